import os

import numpy as np
import pyarrow.parquet as pq
import pytest

from posecore.infer.plan import Shard
from posecore.infer.shards import KEY, ShardKey, ShardWriters, is_finished, shard_path
from posecore.io.trajectories import Provenance

SHARD = Shard("v", 2, 10, 14)


def test_the_key_changes_with_what_the_rows_depend_on(tmp_path):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x" * 10)
    key = ShardKey.of(SHARD, video, "model-a", True)
    assert key == ShardKey.of(SHARD, video, "model-a", True)
    assert key != ShardKey.of(SHARD, video, "model-b", True)
    assert key != ShardKey.of(SHARD, video, "model-a", False)
    assert key != ShardKey.of(Shard("v", 2, 10, 15), video, "model-a", True)
    os.utime(video, ns=(0, 10**18))  # the video replaced (a new modification time)
    assert key != ShardKey.of(SHARD, video, "model-a", True)


def test_the_precision_is_in_the_key_and_files_from_before_it_keep_theirs(tmp_path):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x" * 10)
    auto = ShardKey.of(SHARD, video, "model-a", True)
    assert auto.precision == "auto"
    keys = {precision: ShardKey.of(SHARD, video, "model-a", True, precision) for precision in ("float32", "bfloat16")}
    assert len({auto.to_bytes(), *(k.to_bytes() for k in keys.values())}) == 3
    # A file made before the precision was a setting (always "auto") has the key "auto" gives now.
    before = b'{"model_sha256": "model-a", "priors": true, "start": 10, "stop": 14, '
    before += b'"video_mtime_ns": %d, "video_size_bytes": 10}' % video.stat().st_mtime_ns
    assert auto.to_bytes() == before


def write(tmp_path, shard, frames, key, error=None):
    writers = ShardWriters(tmp_path, ["a", "b"], lambda s: {**Provenance("m", {}, "v", 1, 0.0).to_metadata(), KEY: key})
    for frame in frames:
        writers.rows(shard, np.array([frame]), np.array([frame / 30.0]), np.full((1, 2, 3), frame, np.float32))
    if error is not False:
        writers.end(shard, error)
    return writers.close()


def test_a_shard_file_appears_only_when_its_shard_ends_whole(tmp_path):
    key = ShardKey("m", 1, 0, 10, 14, True)
    (result,) = write(tmp_path, SHARD, range(10, 14), key.to_bytes())
    path = shard_path(tmp_path, SHARD)
    assert result.status == "done" and path == tmp_path / "v" / "shard-00002.parquet"
    table = pq.read_table(path).to_pandas()
    assert table.frame.tolist() == [10, 10, 11, 11, 12, 12, 13, 13] and table.x.tolist() == table.frame.tolist()
    assert is_finished(path, key) and not is_finished(path, ShardKey("m2", 1, 0, 10, 14, True))
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file


def test_a_killed_jobs_temporary_file_goes_when_its_shard_is_written_again(tmp_path):
    path = shard_path(tmp_path, SHARD)
    path.parent.mkdir(parents=True)
    stale = path.with_name(f".{path.stem}.tmp-99999999{path.suffix}")  # a job killed mid-shard
    stale.write_bytes(b"half a parquet file")
    other = path.with_name(".shard-00003.tmp-99999999.parquet")  # another shard's: not this job's
    other.write_bytes(b"x")
    (result,) = write(tmp_path, SHARD, range(10, 14), ShardKey("m", 1, 0, 10, 14, True).to_bytes())
    assert result.status == "done"
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, other.name])


def test_a_shard_with_missing_frames_or_an_error_leaves_no_file(tmp_path):
    (short,) = write(tmp_path, SHARD, range(10, 13), b"k")  # one frame short
    assert short.status == "failed" and "came out with 3 frames" in short.error
    (failed,) = write(tmp_path, SHARD, range(10, 12), b"k", error=OSError("decoder died"))
    assert failed.status == "failed" and failed.error == "OSError: decoder died"
    assert write(tmp_path, SHARD, range(10, 12), b"k", error=False) == []  # never ended: removed at close
    assert not list((tmp_path / "v").iterdir())


def test_unreadable_or_foreign_files_are_not_finished(tmp_path):
    key = ShardKey("m", 1, 0, 10, 14, True)
    assert not is_finished(tmp_path / "missing.parquet", key)
    (tmp_path / "junk.parquet").write_bytes(b"PAR1 not really")
    assert not is_finished(tmp_path / "junk.parquet", key)
    pq.write_table(
        pq.read_table(shard_path(*_finished(tmp_path, key))).replace_schema_metadata({}), tmp_path / "f.parquet"
    )
    assert not is_finished(tmp_path / "f.parquet", key)


def _finished(tmp_path, key):
    write(tmp_path / "w", SHARD, range(10, 14), key.to_bytes())
    return tmp_path / "w", SHARD


def test_a_writer_that_fails_raises_in_the_job(tmp_path):
    (tmp_path / "v").write_text("a file where the folder should be")
    writers = ShardWriters(tmp_path, ["a"], lambda s: {})
    writers.rows(SHARD, np.array([10]), np.array([0.3]), np.zeros((1, 1, 3), np.float32))
    with pytest.raises(FileExistsError):
        writers.close()
