import duckdb
import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest

from posecore.errors import InputError
from posecore.io import trajectories
from posecore.io.trajectories import Provenance, aggregate_shards, keypoint_table, read_provenance, write_atomic

NAMES = ("snout", "tail")


def shard_table(start: int, stop: int, fps: float = 30.0):
    frames = np.arange(start, stop)
    peaks = np.stack([frames * 1.0, frames * 2.0, np.full(len(frames), 0.9)], axis=-1)  # (B, 3)
    peaks = np.repeat(peaks[:, None, :], len(NAMES), axis=1)  # (B, K, 3)
    peaks[:, 1, 0] += 100
    return keypoint_table(frames, frames / fps, peaks, NAMES)


def write_shards(folder, ranges, video_file):
    provenance = Provenance.for_video("abc123", {"model": {"name": "m"}}, video_file)
    paths = []
    for i, (start, stop) in enumerate(ranges):
        path = folder / f"shard-{i:05d}.parquet"
        write_atomic(shard_table(start, stop), path, provenance)
        paths.append(path)
    return paths


@pytest.fixture
def video_file(tmp_path):
    path = tmp_path / "v.mp4"
    path.write_bytes(b"0" * 1234)
    return path


def test_keypoint_table_is_long_and_frame_major():
    table = shard_table(0, 3)
    assert table.schema.equals(trajectories.SCHEMA)
    frame = table.to_pandas()
    assert list(frame["frame"]) == [0, 0, 1, 1, 2, 2]
    assert list(frame["keypoint"].astype(str)) == ["snout", "tail"] * 3
    assert frame.loc[3, "x"] == pytest.approx(101.0)
    assert frame.loc[3, "y"] == pytest.approx(2.0)


def test_aggregate_joins_in_frame_order_with_provenance(tmp_path, video_file):
    shards = write_shards(tmp_path / "p", [(0, 4), (4, 9), (9, 10)], video_file)
    out = tmp_path / "traj" / "video=v" / "part-0.parquet"
    aggregate_shards(list(reversed(shards)), 10, out)
    frame = pd.read_parquet(out)
    assert list(frame["frame"].unique()) == list(range(10))
    provenance = read_provenance(out)
    assert provenance["model_hash"] == "abc123"
    assert provenance["video_size_bytes"] == 1234
    assert provenance["config"] == {"model": {"name": "m"}}
    assert "posecore_version" in provenance


@pytest.mark.parametrize(
    ("ranges", "n_frames", "message"),
    [
        ([(0, 4), (5, 10)], 10, "gap"),
        ([(0, 5), (4, 10)], 10, "overlap"),
        ([(0, 5), (5, 9)], 10, "the video has 10 frames"),
        ([(1, 10)], 10, "gap"),
    ],
)
def test_aggregate_refuses_broken_coverage(tmp_path, video_file, ranges, n_frames, message):
    shards = write_shards(tmp_path / "p", ranges, video_file)
    with pytest.raises(InputError, match=message):
        aggregate_shards(shards, n_frames, tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()


def test_dataset_reads_as_one_table_in_pandas_pyarrow_and_duckdb(tmp_path, video_file):
    root = tmp_path / "trajectories"
    for name, n in [("a", 5), ("b", 7)]:
        shards = write_shards(tmp_path / name, [(0, 3), (3, n)], video_file)
        aggregate_shards(shards, n, root / f"video={name}" / "part-0.parquet")
    expected_rows = (5 + 7) * len(NAMES)
    by_pandas = pd.read_parquet(root)
    by_arrow = ds.dataset(root, format="parquet", partitioning="hive").to_table()
    by_duckdb = duckdb.sql(
        f"select video, count(*) as n from read_parquet('{root}/*/*.parquet', hive_partitioning=true) group by video"
    ).df()
    assert len(by_pandas) == by_arrow.num_rows == expected_rows
    assert set(by_pandas["video"].astype(str)) == {"a", "b"}
    assert set(by_arrow.column_names) >= {"video", "frame", "time_s", "instance", "keypoint", "x", "y", "score"}
    assert dict(zip(by_duckdb["video"], by_duckdb["n"], strict=True)) == {"a": 10, "b": 14}


def test_write_is_atomic_on_failure(tmp_path):
    out = tmp_path / "x.parquet"
    with pytest.raises(Exception):  # noqa: B017 -- any failure of the writer
        write_atomic(object(), out)  # type: ignore[arg-type]
    assert not out.exists()
    assert not list(tmp_path.iterdir())


def test_multi_animal_rows_round_trip_through_dense_arrays():
    peaks = np.arange(2 * 3 * 2 * 3, dtype=float).reshape(2, 3, 2, 3)  # (F, I, K, 3)
    peaks[1, 2] = np.nan  # no animal in slot 2 of frame 1
    tracks = np.array([["a", "b", "c"], ["a", "b", ""]], dtype=object)
    risk = np.array([[False, True, True], [False, False, False]])
    table = trajectories.instances_table(
        np.array([7, 8]),
        np.array([0.7, 0.8]),
        peaks,
        NAMES,
        np.array([[0.9, 0.8, 0.7], [0.6, 0.5, np.nan]]),
        tracks,
        risk,
    )
    assert table.schema.equals(trajectories.MULTI_ANIMAL_SCHEMA) and trajectories.is_multi_animal(table.schema)
    assert not trajectories.is_multi_animal(trajectories.SCHEMA)
    rows = table.to_pandas()
    assert len(rows) == 12 and rows.instance.tolist() == [0, 0, 1, 1, 2, 2] * 2
    back = trajectories.Instances.from_table(table)
    assert back.frames.tolist() == [7, 8] and back.keypoint_names == NAMES
    np.testing.assert_array_equal(back.xy, peaks[..., :2])
    np.testing.assert_array_equal(back.score, peaks[..., 2])
    assert back.track.tolist() == tracks.tolist() and back.swap_risk.tolist() == risk.tolist()
    assert back.present.tolist() == [[True, True, True], [True, True, False]]
    pd.testing.assert_frame_equal(back.to_table().to_pandas(), rows)


def test_single_animal_rows_read_as_one_untracked_instance():
    back = trajectories.Instances.from_table(shard_table(0, 3))
    assert back.xy.shape == (3, 1, 2, 2) and (back.track == "").all() and not back.swap_risk.any()
    np.testing.assert_allclose(back.instance_score[:, 0], 0.9)
    doubled = pd.concat([shard_table(0, 2).to_pandas()] * 2)
    with pytest.raises(InputError, match="appears twice"):
        trajectories.Instances.from_table(doubled, source="t.parquet")


def test_a_track_twice_in_a_frame_and_a_doubled_row_name_the_file_and_frame():
    peaks = np.ones((3, 2, 2, 3))  # (F, I, K, 3)
    tracks = np.array([["a", "b"], ["a", "b"], ["b", "b"]], dtype=object)
    risk = np.zeros((3, 2), dtype=bool)
    table = trajectories.instances_table(np.array([4, 5, 6]), np.zeros(3), peaks, NAMES, np.ones((3, 2)), tracks, risk)
    with pytest.raises(InputError, match=r"track 'b' is on two instances, \[0, 1\]") as caught:
        trajectories.Instances.from_table(table, source="tracked.parquet")
    assert "tracked.parquet" in str(caught.value) and "frame 6" in str(caught.value)
    rows = table.to_pandas()
    doubled = pd.concat([rows, rows[(rows.frame == 5) & (rows.instance == 1)]])
    with pytest.raises(InputError, match=r"instance 1, keypoint '.*' appears twice") as caught:
        trajectories.Instances.from_table(doubled, source="tracked.parquet")
    assert "tracked.parquet" in str(caught.value) and "frame 5" in str(caught.value)
