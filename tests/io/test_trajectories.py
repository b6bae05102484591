import duckdb
import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
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


@pytest.mark.parametrize(
    ("drop", "what"),
    [([5], "one keypoint's row of frame 6"), ([2, 3], "frame 5, both rows")],
    ids=["a row", "a frame"],
)
def test_aggregate_refuses_a_shard_whose_frames_lack_rows(tmp_path, video_file, drop, what):
    first, second = write_shards(tmp_path / "p", [(0, 4), (4, 9)], video_file)
    table = pq.read_table(second)  # frames 4..8, two rows each: rows 2 and 3 are frame 5's
    pq.write_table(table.take([i for i in range(table.num_rows) if i not in drop]), second)
    with pytest.raises(
        InputError, match=r"shard-00001\.parquet: frames 4\.\.8 do not all have the same number of rows"
    ):
        aggregate_shards([first, second], 9, tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists(), what


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


def test_a_write_that_fails_midway_leaves_the_previous_file_whole_and_no_temporary(tmp_path, monkeypatch):
    out = tmp_path / "x.parquet"
    write_atomic(shard_table(0, 3), out)  # a finished earlier version
    write_table = pq.write_table

    def fails_midway(table, where, **kwargs):
        write_table(table, where, **kwargs)
        with open(where, "r+b") as file:  # half the bytes on disk, as a crash or a full disk leaves them
            file.truncate(file.seek(0, 2) // 2)
        raise OSError("No space left on device")

    monkeypatch.setattr(pq, "write_table", fails_midway)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(shard_table(0, 5), out)
    assert pd.read_parquet(out)["frame"].tolist() == [0, 0, 1, 1, 2, 2], "the earlier file, whole"
    assert [p.name for p in tmp_path.iterdir()] == ["x.parquet"]
    monkeypatch.setattr(pq, "write_table", write_table)
    with pytest.raises(Exception):  # noqa: B017 -- any failure of the writer, before it opens a file
        write_atomic(object(), tmp_path / "y.parquet")  # type: ignore[arg-type]
    assert [p.name for p in tmp_path.iterdir()] == ["x.parquet"]


def test_aggregate_orders_shards_by_their_frames_not_their_names(tmp_path, video_file):
    early, late = write_shards(tmp_path / "p", [(0, 4), (4, 9)], video_file)
    early = early.rename(early.with_name("z.parquet"))  # frames 0..3 in the file named last
    aggregate_shards([late, early], 9, tmp_path / "out.parquet")
    assert pd.read_parquet(tmp_path / "out.parquet")["frame"].tolist() == [f for f in range(9) for _ in NAMES]


def test_a_shard_of_one_row_is_a_shard_and_one_of_none_is_refused_by_name(tmp_path, video_file):
    one = keypoint_table(np.array([0]), np.array([0.0]), np.ones((1, 1, 3)), ("snout",))
    write_atomic(one, tmp_path / "one.parquet")
    assert aggregate_shards([tmp_path / "one.parquet"], 1, tmp_path / "out.parquet").num_rows == 1
    write_atomic(one.slice(0, 0), tmp_path / "none.parquet")
    with pytest.raises(InputError, match=r"none\.parquet: shard holds no rows"):
        aggregate_shards([tmp_path / "one.parquet", tmp_path / "none.parquet"], 1, tmp_path / "x.parquet")
    with pytest.raises(InputError, match=r"x\.parquet: no shard files to aggregate"):
        aggregate_shards([], 1, tmp_path / "x.parquet")


@pytest.mark.parametrize(
    ("ranges", "n_frames", "message"),
    [
        ([(0, 4), (5, 10)], 10, r"shard-00001\.parquet: gap: shard starts at frame 5, expected 4"),
        ([(0, 5), (4, 10)], 10, r"shard-00001\.parquet: overlap: shard starts at frame 4, expected 5"),
        ([(0, 3), (3, 6), (6, 9)], 10, r"shard-00002\.parquet: shards end at frame 9, the video has 10 frames"),
    ],
)
def test_broken_coverage_names_the_shard_and_the_frames(tmp_path, video_file, ranges, n_frames, message):
    shards = write_shards(tmp_path / "p", ranges, video_file)
    with pytest.raises(InputError, match=f"^{tmp_path}/p/{message}$"):
        aggregate_shards(shards, n_frames, tmp_path / "out.parquet")


def test_provenance_records_the_video_and_what_decoded_it_and_is_the_same_for_the_same_inputs(tmp_path, video_file):
    from posecore.io.video import VideoInfo

    info = VideoInfo(str(video_file), 120, 30.0, 64, 48, "h264", "yuv420p", 4.0, False, (0,), None)
    config = {"model": {"name": "m"}, "out": tmp_path / "results"}  # a Path: written as text
    provenance = Provenance.for_video("f00d", config, video_file, info, decoder="ffmpeg")
    stat = video_file.stat()
    assert (provenance.video_path, provenance.video_size_bytes, provenance.video_mtime) == (
        str(video_file),
        1234,
        stat.st_mtime,
    )
    assert (provenance.video_n_frames, provenance.video_width, provenance.video_height) == (120, 64, 48)
    assert provenance.decoder == "ffmpeg" and Provenance.for_video("f00d", {}, video_file).decoder == ""
    assert Provenance.for_video("f00d", {}, video_file).video_n_frames is None
    write_atomic(shard_table(0, 2), tmp_path / "t.parquet", provenance)
    read = read_provenance(tmp_path / "t.parquet")
    assert read["config"] == {"model": {"name": "m"}, "out": str(tmp_path / "results")}
    assert read["decoder"] == "ffmpeg" and read["video_n_frames"] == 120
    # The same config in another key order: the same bytes, so that a rerun writes the same file.
    reordered = Provenance.for_video("f00d", {"out": tmp_path / "results", "model": {"name": "m"}}, video_file, info)
    same = Provenance.for_video("f00d", config, video_file, info)
    assert reordered.to_metadata() == same.to_metadata()


def test_trajectory_files_are_zstd_compressed_and_a_file_without_provenance_is_named(tmp_path):
    write_atomic(shard_table(0, 3), tmp_path / "t.parquet")
    assert pq.ParquetFile(tmp_path / "t.parquet").metadata.row_group(0).column(0).compression == "ZSTD"
    with pytest.raises(InputError, match=r"t\.parquet: no posecore provenance in the Parquet metadata$"):
        read_provenance(tmp_path / "t.parquet")


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
