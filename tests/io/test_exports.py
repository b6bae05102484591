import numpy as np
import pandas as pd
import pytest

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
        assert list(pose.source_video.external_file[:]) == ["videos/v.mp4"]


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
