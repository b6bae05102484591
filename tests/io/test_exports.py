import numpy as np
import pandas as pd
import pytest

import posecore
from posecore.errors import InputError
from posecore.filters import FilterConfig, filter_trajectories
from posecore.io import exports

NAMES = ("snout", "leftear", "tailbase")


@pytest.fixture
def table():
    rng = np.random.default_rng(0)
    frames = np.repeat(np.arange(10), len(NAMES))
    out = pd.DataFrame(
        {
            "frame": frames,
            "time_s": frames / 30.0,
            "instance": np.zeros(len(frames), dtype=np.int16),
            "keypoint": pd.Categorical(np.tile(NAMES, 10), categories=NAMES),
            "x": rng.uniform(0, 640, len(frames)).astype(np.float32),
            "y": rng.uniform(0, 480, len(frames)).astype(np.float32),
            "score": rng.uniform(0, 1, len(frames)).astype(np.float32),
        }
    )
    out.loc[5, ["x", "y"]] = np.nan  # frame 1, tailbase: missing
    return out


def _point(table, frame, name):
    return table[(table.frame == frame) & (table.keypoint == name)].iloc[0]


def test_deeplabcut_h5_and_csv_read_back_as_deeplabcut_reads_them(table, tmp_path):
    exports.write_dlc_h5(table, tmp_path / "v.h5", "posecore-abc", NAMES)
    exports.write_dlc_csv(table, tmp_path / "v.csv", "posecore-abc", NAMES)
    from_h5 = pd.read_hdf(tmp_path / "v.h5", "df_with_missing")
    from_csv = pd.read_csv(tmp_path / "v.csv", header=[0, 1, 2], index_col=0)
    for frame in (from_h5, from_csv):
        assert frame.columns.names == ["scorer", "bodyparts", "coords"]
        assert list(frame.columns.get_level_values("bodyparts").unique()) == list(NAMES)
        assert list(frame.columns.get_level_values("coords")[:3]) == ["x", "y", "likelihood"]
        assert list(frame.index) == list(range(10))
        row = _point(table, 7, "leftear")
        assert np.isclose(frame.loc[7, ("posecore-abc", "leftear", "x")], row.x, atol=1e-4)
        assert np.isclose(frame.loc[7, ("posecore-abc", "leftear", "y")], row.y, atol=1e-4)
        assert np.isclose(frame.loc[7, ("posecore-abc", "leftear", "likelihood")], row.score, atol=1e-6)
        assert np.isnan(frame.loc[1, ("posecore-abc", "tailbase", "x")])


def test_filtered_values_can_be_exported_and_missing_frames_are_nan_rows(table, tmp_path):
    filtered = filter_trajectories(table, FilterConfig("median", window=3, min_score=0.0))
    frame = exports.to_dlc_frame(filtered[filtered.frame != 5], "s", NAMES, values="filtered")
    assert np.isnan(frame.loc[5]).all()
    want = _point(filtered, 6, "snout").x_filtered
    assert np.isclose(frame.loc[6, ("s", "snout", "x")], want)
    with pytest.raises(ValueError, match="filter_trajectories"):
        exports.to_dlc_frame(table, "s", NAMES, values="filtered")


def test_nwb_reads_back_with_pynwb(table, tmp_path):
    pynwb = pytest.importorskip("pynwb")
    pytest.importorskip("ndx_pose")
    exports.write_nwb(
        table, tmp_path / "v.nwb", keypoint_names=NAMES, skeleton=[(0, 1), (0, 2)], video_path="videos/v.mp4"
    )
    with pynwb.NWBHDF5IO(str(tmp_path / "v.nwb"), mode="r") as io:
        nwb = io.read()
        pose = nwb.processing["behavior"]["PoseEstimation"]
        assert list(pose.skeleton.nodes[:]) == list(NAMES)
        assert pose.skeleton.edges[:].tolist() == [[0, 1], [0, 2]]
        leftear = pose.pose_estimation_series["leftear"]
        row = _point(table, 7, "leftear")
        assert np.allclose(leftear.data[7], [row.x, row.y], atol=1e-4)
        assert np.isclose(leftear.confidence[7], row.score, atol=1e-6)
        assert np.isclose(leftear.timestamps[7], 7 / 30.0)
        assert np.isnan(pose.pose_estimation_series["tailbase"].data[1]).all()
        video = pose.source_video
        assert list(video.external_file[:]) == ["videos/v.mp4"] and video.format == "external"
        assert list(video.starting_frame[:]) == [0] and np.isclose(video.timestamps[7], 7 / 30.0)
        assert leftear.unit == "pixels" and leftear.reference_frame


def test_two_animals_get_deeplabcuts_individuals_level_and_keypoints_keep_the_tables_order(table):
    second = table.assign(instance=np.int16(1), x=table.x + 1000)
    both = pd.concat([table, second[second.frame < 8]])  # animal1 lost for the last two frames
    frame = exports.to_dlc_frame(both.sort_values(["frame", "instance"], kind="stable"), "s")
    assert frame.columns.names == ["scorer", "individuals", "bodyparts", "coords"]
    assert list(frame.columns.get_level_values("individuals").unique()) == ["animal0", "animal1"]
    assert list(frame.columns.get_level_values("bodyparts").unique()) == list(NAMES)  # in the order rows give them
    row = _point(table, 7, "leftear")
    assert frame.loc[7, ("s", "animal1", "leftear", "x")] == pytest.approx(row.x + 1000)
    assert frame.loc[7, ("s", "animal0", "leftear", "likelihood")] == pytest.approx(row.score)
    assert frame.loc[9, ("s", "animal1")].isna().all() and frame.loc[9, ("s", "animal0")].notna().any()
    assert frame.index.name is None and (frame.dtypes == np.float64).all()


def test_exports_refuse_what_they_cannot_write(table, tmp_path):
    two_videos = pd.concat([table.assign(video="a"), table.assign(video="b")])
    with pytest.raises(ValueError, match="an export holds one video; the table has 2"):
        exports.to_dlc_frame(two_videos, "s")
    with pytest.raises(ValueError, match="unknown values 'smooth'; known: raw, filtered"):
        exports.to_dlc_frame(table, "s", values="smooth")
    pytest.importorskip("ndx_pose")
    with pytest.raises(
        ValueError, match=r"^write_nwb takes one instance; select one with table\[table.instance == i\]$"
    ):
        exports.write_nwb(
            pd.concat([table, table.assign(instance=np.int16(1))]), tmp_path / "v.nwb", keypoint_names=NAMES
        )
    with pytest.raises(ValueError, match=r"keypoints \['tailbase'\] are not in keypoint_names \['snout', 'leftear'\]"):
        exports.write_nwb(table, tmp_path / "v.nwb", keypoint_names=NAMES[:2])
    with pytest.raises(ValueError, match="one video"):
        exports.write_nwb(two_videos, tmp_path / "v.nwb", keypoint_names=NAMES)
    assert not list(tmp_path.iterdir())


def test_nwb_names_the_session_after_the_video_and_the_scorer(table, tmp_path):
    import datetime

    pynwb = pytest.importorskip("pynwb")
    pytest.importorskip("ndx_pose")
    start = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    filtered = filter_trajectories(table, FilterConfig("median", window=3, min_score=0.0))
    exports.write_nwb(
        filtered, tmp_path / "v.nwb", keypoint_names=NAMES, video_path="videos/m1.mp4", scorer="demo",
        values="filtered", session_start_time=start,
    )  # fmt: skip
    exports.write_nwb(table, tmp_path / "plain.nwb", keypoint_names=NAMES)
    with pynwb.NWBHDF5IO(str(tmp_path / "v.nwb"), mode="r") as io:
        nwb = io.read()
        assert nwb.identifier == "posecore-m1-demo" and nwb.session_start_time == start
        assert nwb.session_description == "posecore pose estimation of m1.mp4"
        pose = nwb.processing["behavior"]["PoseEstimation"]
        assert pose.scorer == "demo" and pose.source_software == "posecore"
        snout = pose.pose_estimation_series["snout"]
        assert np.allclose(
            snout.data[6], [_point(filtered, 6, "snout").x_filtered, _point(filtered, 6, "snout").y_filtered]
        )
        assert np.allclose(nwb.acquisition["source_video"].timestamps[:], np.arange(10) / 30.0)
    with pynwb.NWBHDF5IO(str(tmp_path / "plain.nwb"), mode="r") as io:
        nwb = io.read()
        assert nwb.identifier == "posecore-video-posecore" and "source_video" not in nwb.acquisition
        assert nwb.processing["behavior"]["PoseEstimation"].source_video is None


def test_a_file_that_is_not_parquet_is_named(tmp_path):
    (tmp_path / "t.parquet").write_text("not parquet")
    with pytest.raises(InputError, match=r"t\.parquet: not a readable trajectory file"):
        exports.read_trajectory_table(tmp_path / "t.parquet")
    written = tmp_path / "ok.parquet"
    pd.DataFrame({"frame": [1, 2]}).to_parquet(written)
    assert exports.read_trajectory_table(written)["frame"].tolist() == [1, 2]


def test_deeplabcut_files_follow_the_keypoints_asked_for_the_frames_numbers_and_the_values_asked_for(table, tmp_path):
    filtered = filter_trajectories(table, FilterConfig("median", window=3, min_score=0.0))
    later = filtered.assign(frame=filtered.frame + 100, video="m1")  # frames 100..109 of one video
    order = ("tailbase", "snout", "leftear")
    exports.write_dlc_csv(later, tmp_path / "v.csv", "s", order, values="filtered")
    exports.write_dlc_h5(later, tmp_path / "v.h5", "s", order, values="filtered")
    with pd.HDFStore(tmp_path / "v.h5", mode="r") as store:
        assert store.get_storer("df_with_missing").is_table, "format='table', as DeepLabCut writes it"
    for frame in (pd.read_csv(tmp_path / "v.csv", header=[0, 1, 2], index_col=0), pd.read_hdf(tmp_path / "v.h5")):
        assert list(frame.columns.get_level_values("bodyparts").unique()) == list(order)
        assert list(frame.index) == list(range(100, 110))
        point = _point(filtered, 6, "snout")
        assert np.allclose(frame.loc[106, ("s", "snout", ["x", "y"])], [point.x_filtered, point.y_filtered])
    assert exports.to_dlc_frame(table.iloc[:0], "s", NAMES).shape == (0, 0)


def test_filtered_values_asked_of_a_raw_table_are_refused():
    with pytest.raises(
        ValueError, match=r"^values='filtered' needs a table from posecore\.filters\.filter_trajectories$"
    ):
        exports._columns(pd.DataFrame({"x": [1.0]}), "filtered")


def test_nwb_holds_the_metadata_a_reader_relies_on(table, tmp_path):
    pynwb = pytest.importorskip("pynwb")
    pytest.importorskip("ndx_pose")
    exports.write_nwb(table, tmp_path / "v.nwb", keypoint_names=NAMES, skeleton=[(0, 1)], video_path="videos/v.mp4")
    with pynwb.NWBHDF5IO(str(tmp_path / "v.nwb"), mode="r") as io:
        nwb = io.read()
        behavior = nwb.processing["behavior"]
        pose = behavior["PoseEstimation"]
        assert behavior.description == "pose estimation" and pose.description == "Keypoints estimated by posecore"
        assert pose.source_software_version == posecore.__version__
        assert pose.skeleton.name == "skeleton" and pose.skeleton.edges.dtype == np.uint8
        snout = pose.pose_estimation_series["snout"]
        assert snout.unit == "pixels" and snout.data.dtype == np.float64 and snout.confidence.dtype == np.float64
        assert snout.timestamps.dtype == np.float64
        assert snout.reference_frame == "(0, 0) is the centre of the top-left pixel of the video frame; y points down"
        assert snout.confidence_definition == "peak value of the model's confidence map"
        assert snout.description.startswith("snout: x (column), y (row) in pixels")
        video = nwb.acquisition["source_video"]
        assert (video.format, video.unit, list(video.starting_frame)) == ("external", "n.a.", [0])
        assert video.description == "the video the keypoints were estimated on"
        assert nwb.session_start_time.utcoffset() is not None


def test_tracked_animals_export_as_multi_animal_deeplabcut_individuals(tmp_path):
    from posecore.io import trajectories

    peaks = np.random.default_rng(0).uniform(0, 50, (3, 2, 2, 3))  # (F, I, K, 3)
    peaks[1, 1] = np.nan  # track_1 unseen in frame 1
    tracks = np.array([["track_0", "track_1"], ["track_0", ""], ["track_0", "track_1"]], dtype=object)
    table = trajectories.instances_table(
        np.arange(3), np.arange(3) / 30, peaks, ("nose", "tail"), np.ones((3, 2)), tracks
    )
    path = tmp_path / "video_el.h5"
    exports.write_dlc_h5(table.to_pandas(), path, scorer="posecore")
    back = pd.read_hdf(path)
    assert back.columns.names == ["scorer", "individuals", "bodyparts", "coords"]
    assert list(back.columns.get_level_values("individuals").unique()) == ["track_0", "track_1"]
    np.testing.assert_allclose(back[("posecore", "track_1", "tail", "x")].to_numpy()[[0, 2]], peaks[[0, 2], 1, 1, 0])
    assert np.isnan(back[("posecore", "track_1", "tail", "x")].iloc[1])
    np.testing.assert_allclose(back[("posecore", "track_0", "nose", "likelihood")], peaks[:, 0, 0, 2])
