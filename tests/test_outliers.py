from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from posecore.errors import InputError
from posecore.io.labels import read_labels, resolve_image
from posecore.io.trajectories import Provenance, keypoint_table, write_atomic
from posecore.io.video import probe, read_frame_array
from posecore.outliers import OutlierConfig, extract_outliers, find_outliers, pick_outliers, read_poses

from .conftest import SHARED_DATA

VIDEO = SHARED_DATA / "lp-mirror-mouse" / "videos" / "test_vid.mp4"
NAMES = ["snout", "left_ear", "right_ear"]
N_FRAMES = 994  # frames in test_vid.mp4
CONFIG = OutlierConfig(n_frames=10, min_score=0.5, jump_px=20.0, min_gap=10, nan_below=0.1)

# Planted outliers, and the severity each must get (module docstring: 1 - score / min_score for a
# low score, 1 - jump_px / jump for a jump, the larger when both hold).
PLANTED = {100: ("low_score", 0.9), 700: ("jump", 0.8), 400: ("low_score", 0.6), 50: ("low_score+jump", 0.5)}
SHADOWED = (105, 701)  # flagged too, but within min_gap of a worse pick


def _peaks() -> np.ndarray:
    """float (F, K, 3) smooth (x, y, score) tracks with the planted outliers."""
    t = np.arange(N_FRAMES)
    peaks = np.empty((N_FRAMES, len(NAMES), 3))
    peaks[:, 0, :2] = 200.0, 150.0  # the snout stays put: its glitch jumps out and back by the same 100 px
    peaks[:, 1, 0], peaks[:, 1, 1] = 150 + 40 * np.cos(t / 80), 250 + 40 * np.sin(t / 80)  # < 1 px per frame
    peaks[:, 2, 0], peaks[:, 2, 1] = 250 + 40 * np.cos(t / 90), 250 + 40 * np.sin(t / 90)
    peaks[..., 2] = 0.9
    peaks[100, 2, 2] = 0.05  # right ear lost: severity 0.9, and written as NaN (below nan_below)
    peaks[105, 0, 2] = 0.3  # severity 0.4, but 5 frames from frame 100
    peaks[400, 1, 2] = 0.2  # severity 0.6
    peaks[50:, 0, 1] += 30.0  # the snout steps 30 px at frame 50 (severity 1/3) and stays there
    peaks[50, 0, 2] = 0.25  # with a low score there (severity 0.5)
    peaks[700, 0, :2] += (60.0, 80.0)  # a one-frame glitch of 100 px: frames 700 and 701 both jump 100 px
    return peaks


@pytest.fixture(scope="module")
def video() -> Path:
    if not VIDEO.is_file():
        pytest.skip("../shared/data is not available")
    return VIDEO


@pytest.fixture(scope="module")
def trajectories(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("traj") / "test_vid.parquet"
    table = keypoint_table(np.arange(N_FRAMES), np.arange(N_FRAMES) / 250.0, _peaks(), NAMES)
    provenance = Provenance("ab" * 32, {"test": True}, "test_vid.mp4", 0, 0.0)
    write_atomic(table, path, provenance)
    return path


@pytest.fixture(scope="module")
def written(video, trajectories, tmp_path_factory):
    out = tmp_path_factory.mktemp("refine") / "test_vid"
    picks = extract_outliers(trajectories, video, out, CONFIG, labeler="alice", skeleton=[("snout", "left_ear")])
    return out, picks


def test_picks_are_the_planted_frames_worst_first(written):
    out, picks = written
    assert list(picks["frame"]) == list(PLANTED)
    assert list(picks["rank"]) == [1, 2, 3, 4]
    assert list(picks["reason"]) == [reason for reason, _ in PLANTED.values()]
    np.testing.assert_allclose(picks["severity"], [severity for _, severity in PLANTED.values()], atol=1e-6)
    assert picks.set_index("frame").loc[100, "worst_keypoint"] == "right_ear"
    assert picks.set_index("frame").loc[700, "jump_keypoint"] == "snout"
    assert picks.set_index("frame").loc[700, "max_jump_px"] == pytest.approx(100.0)
    tsv = pd.read_csv(out / "outliers.tsv", sep="\t")
    assert list(tsv["frame"]) == list(PLANTED)
    assert list(tsv["image"]) == [f"img{f:05d}.png" for f in PLANTED]
    np.testing.assert_allclose(tsv["time_s"], np.array(list(PLANTED)) / 250.0)


def test_min_gap_and_n_frames(trajectories):
    flagged = find_outliers(read_poses(trajectories), CONFIG)
    assert set(flagged["frame"]) == set(PLANTED) | set(SHADOWED)
    assert list(pick_outliers(flagged, 2, CONFIG.min_gap)["frame"]) == [100, 700]
    everything = list(pick_outliers(flagged, 10, 0)["frame"])
    assert everything == [100, 700, 701, 400, 50, 105], "no gap: the shadowed frames come back, ranked"
    picked = np.array(list(pick_outliers(flagged, 10, 300)["frame"]))
    assert list(picked) == [100, 700, 400]
    assert np.abs(picked[:, None] - picked[None, :])[~np.eye(3, dtype=bool)].min() >= 300


def test_mean_statistic_flags_fewer_frames(trajectories):
    flagged = find_outliers(read_poses(trajectories), OutlierConfig(score_stat="mean", min_score=0.68))
    # means (0.9, 0.9, 0.05) -> 0.617 and (0.9, 0.2, 0.9) -> 0.667 are below 0.68; (0.3, 0.9, 0.9) -> 0.7 is not
    assert set(flagged["frame"]) == {100, 400, 50, 700, 701}
    assert flagged.set_index("frame").loc[50, "reason"] == "jump", "frame 50's mean score 0.683 is not low"


def test_images_are_the_decoded_frames(written, video):
    out, _ = written
    folder = out / "labeled-data" / "test_vid"
    frames = sorted(PLANTED)
    assert sorted(p.name for p in folder.glob("*.png")) == [f"img{f:05d}.png" for f in frames]
    from PIL import Image

    decoded = read_frame_array(video, frames)
    for frame, image in zip(frames, decoded, strict=True):
        np.testing.assert_array_equal(np.asarray(Image.open(folder / f"img{frame:05d}.png")), image)
    assert not list(out.parent.glob(".*")), "no temporary folder is left behind"


def test_machine_labels_read_back_with_pandas(written):
    out, _ = written
    folder = out / "labeled-data" / "test_vid"
    h5 = pd.read_hdf(folder / "machinelabels-iter0.h5")  # one table, as napari-deeplabcut reads it
    csv = pd.read_csv(folder / "machinelabels-iter0.csv", header=[0, 1, 2], index_col=[0, 1, 2])
    pd.testing.assert_frame_equal(h5, csv, check_names=False)
    assert h5.columns.names == ["scorer", "bodyparts", "coords"]
    assert set(h5.columns.get_level_values("scorer")) == {"posecore-" + "ab" * 6}
    assert list(h5.columns.get_level_values("bodyparts")[::3]) == NAMES
    assert list(h5.columns.get_level_values("coords")[:3]) == ["x", "y", "likelihood"]
    assert list(h5.index) == [("labeled-data", "test_vid", f"img{f:05d}.png") for f in sorted(PLANTED)]
    assert all((out / Path(*row)).is_file() for row in h5.index), "rows are image paths from the project folder"
    peaks = _peaks()
    for frame in sorted(PLANTED):
        row = h5.loc[("labeled-data", "test_vid", f"img{frame:05d}.png")].to_numpy().reshape(3, 3)  # (K, x/y/p)
        expected = peaks[frame].copy()
        expected[expected[:, 2] < CONFIG.nan_below] = np.nan
        np.testing.assert_allclose(row, expected, rtol=1e-6)
    assert h5.loc[("labeled-data", "test_vid", "img00100.png"), h5.columns[6:9]].isna().all(), "lost ear is NaN"


def test_config_yaml_is_where_napari_deeplabcut_looks(written):
    out, _ = written
    images = out / "labeled-data" / "test_vid"
    config = yaml.safe_load((images.parents[1] / "config.yaml").read_text())
    assert config["scorer"] == "alice"
    assert config["bodyparts"] == NAMES
    assert config["skeleton"] == [["snout", "left_ear"]]
    assert config["pcutoff"] == CONFIG.min_score
    assert not config["multianimalproject"]
    assert {"dotsize", "colormap", "iteration"} <= set(config)
    assert "CollectedData_alice.h5" in (out / "README.txt").read_text()


def test_corrected_collected_data_reads_back_as_labels(written):
    out, _ = written
    folder = out / "labeled-data" / "test_vid"
    # What the labeler's tool saves: the corrected points, coords x and y, under their own name.
    labels = pd.read_hdf(folder / "machinelabels-iter0.h5").drop(columns="likelihood", level="coords")
    labels.columns = labels.columns.set_levels(["alice"], level="scorer")
    labels.loc[("labeled-data", "test_vid", "img00700.png"), ("alice", "snout", "x")] = 200.0
    labels.loc[("labeled-data", "test_vid", "img00700.png"), ("alice", "snout", "y")] = 180.0
    labels.to_csv(folder / "CollectedData_alice.csv")
    labels.to_hdf(folder / "CollectedData_alice.h5", key="df_with_missing", mode="w")
    for name in ("CollectedData_alice.csv", "CollectedData_alice.h5"):
        table = read_labels(folder / name)
        assert table.scorer == "alice" and table.keypoint_names == tuple(NAMES)
        assert table.image_paths[2] == "labeled-data/test_vid/img00400.png"
        row = table.image_paths.index("labeled-data/test_vid/img00700.png")
        np.testing.assert_allclose(table.keypoints[row, 0], [200.0, 180.0])
        assert np.isnan(table.keypoints[table.image_paths.index("labeled-data/test_vid/img00100.png"), 2]).all()
        for i, image in enumerate(table.image_paths):
            assert resolve_image(table.path, image, i).parent == folder


def test_frames_beyond_the_video_are_refused(video, tmp_path):
    table = keypoint_table(np.arange(N_FRAMES + 5), np.zeros(N_FRAMES + 5), np.zeros((N_FRAMES + 5, 1, 3)), ["a"])
    path = tmp_path / "other.parquet"
    write_atomic(table, path)
    with pytest.raises(InputError, match=rf"other\.parquet: has frame {N_FRAMES + 4} but .* has {N_FRAMES} frames"):
        extract_outliers(path, video, tmp_path / "out", CONFIG, info=probe(video))
    assert not (tmp_path / "out").exists()


def test_missing_or_unreadable_trajectories_are_named(tmp_path):
    with pytest.raises(InputError, match=r"nope\.parquet: no such trajectory file"):
        read_poses(tmp_path / "nope.parquet")
    (tmp_path / "notes.parquet").write_text("not parquet")
    with pytest.raises(InputError, match=r"notes\.parquet: not a readable Parquet"):
        read_poses(tmp_path / "notes.parquet")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.drop(columns="score"), r"missing columns \['score'\]"),
        (lambda t: pd.concat([t, t.assign(instance=1)]), "several instances"),
        (lambda t: pd.concat([t, t.iloc[:1]]), r"a \(frame, keypoint\) appears twice"),
        (lambda t: t.iloc[:0], "no rows"),
    ],
)
def test_bad_trajectory_tables_are_named(trajectories, tmp_path, change, message):
    path = tmp_path / "bad.parquet"
    change(pd.read_parquet(trajectories)).to_parquet(path)
    with pytest.raises(InputError, match=rf"bad\.parquet: .*{message}"):
        read_poses(path)


def test_a_table_of_several_videos_needs_the_name(trajectories):
    table = pd.read_parquet(trajectories)
    both = pd.concat([table.assign(video="test_vid"), table.assign(video="other", score=0.0)])
    with pytest.raises(InputError, match=r"holds the videos \['other', 'test_vid'\]"):
        read_poses(both)
    poses = read_poses(both, video_name="test_vid")
    assert poses.xy.shape == (N_FRAMES, 3, 2) and np.nanmin(poses.score) == pytest.approx(0.05)
