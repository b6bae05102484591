import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from posecore.errors import InputError
from posecore.io.trajectories import keypoint_table, write_atomic
from posecore.io.trajectory_arrays import iter_points, read_points, summarize

NAMES = ("snout", "neck", "tail")


def random_peaks(n_frames: int, seed: int = 0) -> np.ndarray:
    """float32 (F, K, 3) (x, y, score), a few NaN points."""
    rng = np.random.default_rng(seed)
    shape = (n_frames, len(NAMES))
    peaks = np.concatenate([rng.uniform(0, 60, (*shape, 2)), rng.uniform(0, 1, (*shape, 1))], axis=-1)
    peaks[rng.random((n_frames, len(NAMES))) < 0.1, :2] = np.nan
    return peaks.astype(np.float32)


def two_instance_table(frames: np.ndarray, peaks0: np.ndarray, peaks1: np.ndarray) -> pa.Table:
    """Frame-major rows of instances 0 and 1 (each frame: instance 0's keypoints, then 1's)."""
    a = keypoint_table(frames, frames / 25.0, peaks0, NAMES).to_pandas()
    b = keypoint_table(frames, frames / 25.0, peaks1, NAMES).to_pandas().assign(instance=np.int16(1))
    rows = pd.concat([a, b]).sort_values(["frame", "instance"], kind="stable")
    return pa.Table.from_pandas(rows, preserve_index=False)


def test_summary_and_chunks_give_every_point_of_a_long_file_in_order(tmp_path):
    # 70,000 rows: more than one Parquet batch, so chunks are stitched across batches.
    frames = np.arange(5, 5 + 23_334)
    peaks = random_peaks(len(frames))
    path = tmp_path / "t.parquet"
    write_atomic(keypoint_table(frames, frames / 30.0, peaks, NAMES), path)
    summary = summarize(path)
    assert (summary.n_rows, summary.first_frame, summary.last_frame) == (70_002, 5, 23_338)
    assert summary.instances == (0,) and summary.keypoint_names == NAMES and summary.frame_ordered
    assert summary.x_range == pytest.approx((np.nanmin(peaks[..., 0]), np.nanmax(peaks[..., 0])))
    assert np.allclose(summary.time_samples[:, 1], summary.time_samples[:, 0] / 30.0)
    # Frames [0, 23_400): 5 before the file's first frame and 61 after its last come out NaN.
    chunks = list(iter_points(summary, 0, 23_400, chunk_frames=1000))
    assert [first for first, _ in chunks] == list(range(0, 23_400, 1000))
    points = np.concatenate([chunk for _, chunk in chunks])  # (23_400, 1, K, 3)
    assert points.shape == (23_400, 1, len(NAMES), 3)
    assert np.isnan(points[:5]).all() and np.isnan(points[23_339:]).all()
    np.testing.assert_array_equal(points[5:23_339, 0], peaks)


def test_chunks_start_inside_the_file_and_keep_instances_apart(tmp_path):
    frames = np.arange(40)
    peaks0, peaks1 = random_peaks(40, seed=1), random_peaks(40, seed=2)
    path = tmp_path / "t.parquet"
    pq.write_table(two_instance_table(frames, peaks0, peaks1), path)
    summary = summarize(path)
    assert summary.instances == (0, 1)
    points = np.concatenate([chunk for _, chunk in iter_points(summary, 13, 31, chunk_frames=7)])
    np.testing.assert_array_equal(points[:, 0], peaks0[13:31])
    np.testing.assert_array_equal(points[:, 1], peaks1[13:31])


def test_rows_out_of_frame_order_are_refused_for_streaming_but_read_whole(tmp_path):
    frames = np.arange(10)
    peaks = random_peaks(10)
    path = tmp_path / "shuffled.parquet"
    table = keypoint_table(frames, frames / 30.0, peaks, NAMES)
    pq.write_table(table.take(np.random.default_rng(0).permutation(table.num_rows)), path)
    summary = summarize(path)
    assert not summary.frame_ordered
    with pytest.raises(InputError, match=r"shuffled\.parquet: rows are not in frame order"):
        next(iter_points(summary, 0, 10))
    whole = read_points([path])
    np.testing.assert_array_equal(whole.points[:, 0], peaks)
    np.testing.assert_allclose(whole.times, frames / 30.0)


def test_read_points_takes_plain_string_keypoints_and_keeps_only_frames_with_rows(tmp_path):
    frames = np.array([3, 4, 9])
    peaks = random_peaks(3)
    rows = keypoint_table(frames, frames / 30.0, peaks, NAMES).to_pandas()
    rows["keypoint"] = rows["keypoint"].astype(str)  # written by another tool: no dictionary column
    rows.to_parquet(tmp_path / "plain.parquet")
    read = read_points([tmp_path / "plain.parquet"])
    assert read.keypoint_names == NAMES
    np.testing.assert_array_equal(read.frames, frames)
    np.testing.assert_array_equal(read.points[:, 0], peaks)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda rows: pd.concat([rows, rows.iloc[[4]]]), r"\(frame 1\): a \(frame, instance, keypoint\) has two rows"),
        (
            lambda rows: rows.assign(time_s=rows["time_s"].where(rows.index != 4, 9.0)),
            r"\(frame 1\): a frame has rows with different times",
        ),
        (lambda rows: rows.drop(columns="score"), r"missing columns \['score'\]"),
        (lambda rows: rows.iloc[:0], "has no rows"),
    ],
)
def test_read_points_names_the_file_and_what_is_wrong(tmp_path, change, message):
    frames = np.arange(4)
    rows = keypoint_table(frames, frames / 30.0, random_peaks(4), NAMES).to_pandas()
    path = tmp_path / "bad.parquet"
    change(rows).to_parquet(path)
    with pytest.raises(InputError, match=rf"bad\.parquet.*{message}"):
        read_points([path])


def test_a_file_that_is_not_parquet_is_named(tmp_path):
    path = tmp_path / "notes.parquet"
    path.write_text("frame,x,y\n")
    with pytest.raises(InputError, match=r"notes\.parquet: not a readable Parquet trajectory file"):
        summarize(path)
