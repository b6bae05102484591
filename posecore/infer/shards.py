"""Shard files: one Parquet file per shard, written atomically, and recognised when finished.

A shard file holds the trajectory rows of its frames (`posecore.io.trajectories.SCHEMA`), the
provenance of every trajectory file, and under `KEY` what its rows depend on (`ShardKey`: the
model file, the video file's size and modification time, the frames, the priors). A file
whose key equals the one a job would write is finished work: the job keeps it and does not
make it again, so a job killed half-way, cancelled or failed redoes only the shards it had not
finished. A file appears only when its shard is complete (temporary name, then a rename).

`ShardWriters` writes the files from a thread of its own, so that the rows it holds until a
row group is full live in that thread's heap, not between the model's activations
(`posecore.hugepages.reuse_large_buffers`).
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from posecore.infer.plan import Shard
from posecore.io import trajectories

KEY = b"posecore_shard"
ROW_GROUP_ROWS = 65536  # rows buffered before they go to the Parquet file as one row group


@dataclass(frozen=True)
class ShardKey:
    """What a shard file's rows depend on; a finished file with the same key is not made again."""

    model_sha256: str
    video_size_bytes: int
    video_mtime_ns: int
    start: int
    stop: int
    priors: bool

    @classmethod
    def of(cls, shard: Shard, video: str | Path, model_sha256: str, priors: bool) -> ShardKey:
        """The key of `shard` of the video file `video`, as it is on disk now."""
        stat = Path(video).stat()
        return cls(model_sha256, stat.st_size, stat.st_mtime_ns, shard.start, shard.stop, bool(priors))

    def to_bytes(self) -> bytes:
        """The key as stored in the file's metadata."""
        return json.dumps(asdict(self), sort_keys=True).encode()


def shard_path(predictions_dir: str | Path, shard: Shard) -> Path:
    """Where a shard's file goes: `<predictions_dir>/<video>/shard-NNNNN.parquet`."""
    return Path(predictions_dir) / shard.video / f"shard-{shard.index:05d}.parquet"


def is_finished(path: str | Path, key: ShardKey) -> bool:
    """Whether `path` is a complete shard file made with `key` (any unreadable file is not)."""
    try:
        metadata = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowException):
        return False
    return metadata.get(KEY) == key.to_bytes()


@dataclass(frozen=True)
class ShardResult:
    """What became of one shard in a job.

    Attributes:
        shard: the shard.
        status: "done" (made by this job), "kept" (finished before, left as it was) or "failed".
        seconds: wall seconds from its first batch to its file (0 for kept shards).
        error: why it failed ("" otherwise).
        exception: the exception it failed with, in the process that ran it (None otherwise).
    """

    shard: Shard
    status: str
    seconds: float = 0.0
    error: str = ""
    exception: BaseException | None = field(default=None, compare=False, repr=False)


@dataclass
class _Open:
    """A shard file being written: its temporary file, writer and the rows not yet written."""

    path: Path
    tmp: Path
    writer: pq.ParquetWriter
    started: float
    pending: list[pa.Table]
    pending_rows: int = 0
    rows: int = 0


class ShardWriters:
    """Shard files written from one background thread, each renamed into place when its shard ends.

    Args:
        predictions_dir: where shard files go (`shard_path`).
        keypoint_names: the K keypoint names of the rows.
        metadata_of: the Parquet metadata of a shard's file (provenance and key).
    """

    def __init__(
        self,
        predictions_dir: str | Path,
        keypoint_names: Sequence[str],
        metadata_of: Callable[[Shard], dict[bytes, bytes]],
    ) -> None:
        self.predictions_dir = Path(predictions_dir)
        self.names = list(keypoint_names)
        self.metadata_of = metadata_of
        self.results: list[ShardResult] = []
        self._queue: queue.Queue = queue.Queue(maxsize=64)
        self._open: dict[Shard, _Open] = {}
        self._failure: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, name="posecore-write", daemon=True)
        self._thread.start()

    def rows(self, shard: Shard, frames: np.ndarray, times: np.ndarray, peaks: np.ndarray) -> None:
        """Queue the keypoints of frames (B,) at times (B,), peaks (B, K, 3) as (x, y, score), for `shard`'s file."""
        self._send(("rows", shard, frames, times, peaks))

    def end(self, shard: Shard, error: BaseException | None = None) -> None:
        """End `shard`: its file is renamed into place (or, with `error` or missing rows, removed)."""
        self._send(("end", shard, error))

    def close(self) -> list[ShardResult]:
        """Wait for every queued write; the results of the ended shards. Unended shards are removed."""
        self._send(None)
        self._thread.join()
        for shard in list(self._open):
            self._abort(shard)
        if self._failure:
            raise self._failure[0]
        return self.results

    def _send(self, item: object) -> None:
        while self._thread.is_alive():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        if self._failure:
            raise self._failure[0]

    def _run(self) -> None:
        try:
            while (item := self._queue.get()) is not None:
                if item[0] == "rows":
                    self._rows(*item[1:])
                else:
                    self._end(*item[1:])
        except BaseException as error:  # raised in the job's thread by `close`
            self._failure.append(error)

    def _rows(self, shard: Shard, frames: np.ndarray, times: np.ndarray, peaks: np.ndarray) -> None:
        handle = self._open.get(shard) or self._start(shard)
        handle.pending.append(trajectories.keypoint_table(frames, times, peaks, self.names))
        handle.pending_rows += len(frames) * len(self.names)
        if handle.pending_rows >= ROW_GROUP_ROWS:
            self._flush(handle)

    def _start(self, shard: Shard) -> _Open:
        path = shard_path(self.predictions_dir, shard)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
        schema = trajectories.SCHEMA.with_metadata(self.metadata_of(shard))
        handle = _Open(path, tmp, pq.ParquetWriter(tmp, schema, compression="zstd"), time.monotonic(), [])
        self._open[shard] = handle
        return handle

    def _flush(self, handle: _Open) -> None:
        if handle.pending:
            handle.writer.write_table(pa.concat_tables(handle.pending).unify_dictionaries().combine_chunks())
            handle.rows += handle.pending_rows
            handle.pending, handle.pending_rows = [], 0

    def _end(self, shard: Shard, error: BaseException | None) -> None:
        handle = self._open.get(shard) or self._start(shard)
        expected = shard.n_frames * len(self.names)
        if error is None and handle.rows + handle.pending_rows != expected:
            got = (handle.rows + handle.pending_rows) // max(len(self.names), 1)
            error = RuntimeError(f"shard {shard.index} [{shard.start}, {shard.stop}) came out with {got} frames")
        if error is not None:
            self._abort(shard)
            self.results.append(ShardResult(shard, "failed", error=f"{type(error).__name__}: {error}", exception=error))
            return
        self._flush(handle)
        handle.writer.close()
        os.replace(handle.tmp, handle.path)
        del self._open[shard]
        self.results.append(ShardResult(shard, "done", time.monotonic() - handle.started))

    def _abort(self, shard: Shard) -> None:
        handle = self._open.pop(shard)
        handle.writer.close()
        handle.tmp.unlink(missing_ok=True)
