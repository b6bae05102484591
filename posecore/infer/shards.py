"""Shard files: one Parquet file per shard, written atomically, and recognised when finished.

A shard file holds the trajectory rows of its frames (`posecore.io.trajectories.SCHEMA`), the
provenance of every trajectory file, and under `KEY` what its rows depend on (`ShardKey`: the
model file, the video file's size and modification time, the frames, the priors, the
precision asked for). A file
whose key equals the one a job would write is finished work: the job keeps it and does not
make it again, so a job killed half-way, cancelled or failed redoes only the shards it had not
finished. A file appears only when its shard is complete (temporary name, then a rename).

`ShardWriters` writes the files from a thread of its own, so that the rows it holds until a
row group is full live in that thread's heap, not between the model's activations
(`posecore.hugepages.reuse_large_buffers`). What a batch's rows are is the predictor's
`RowLayout`: one animal's keypoints per frame by default (`keypoint_rows`), a top-down model's
`max_animals` untracked detection slots per frame otherwise (`posecore.multi.predict.detection_rows`).
`join_video` makes a video's trajectory file of its shard files: joined, and tracked when
they hold several animals per frame.
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
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from posecore.infer.plan import Shard
from posecore.io import trajectories
from posecore.io.atomic import temporary_path

if TYPE_CHECKING:
    from posecore.multi.tracking import TrackerConfig

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
    precision: str = "auto"

    @classmethod
    def of(cls, shard: Shard, video: str | Path, model_sha256: str, priors: bool, precision: str = "auto") -> ShardKey:
        """The key of `shard` of the video file `video`, as it is on disk now."""
        stat = Path(video).stat()
        return cls(model_sha256, stat.st_size, stat.st_mtime_ns, shard.start, shard.stop, bool(priors), precision)

    def to_bytes(self) -> bytes:
        """The key as stored in the file's metadata.

        The precision is stored only where it is not "auto", so that the files made before it
        was a setting (all with "auto") keep their keys and are not made again.
        """
        fields = asdict(self)
        if fields["precision"] == "auto":
            del fields["precision"]
        return json.dumps(fields, sort_keys=True).encode()


@dataclass(frozen=True)
class RowLayout:
    """How a predictor's output for a batch of frames becomes a shard file's rows.

    Attributes:
        schema: the file's columns (`posecore.io.trajectories.SCHEMA` or `MULTI_ANIMAL_SCHEMA`).
        rows_per_frame: rows every frame has (keypoints times instance slots).
        table: the rows of frames (B,) at times (B,) from the predictor's output for them.
    """

    schema: pa.Schema
    rows_per_frame: int
    table: Callable[[np.ndarray, np.ndarray, Any], pa.Table]


def keypoint_rows(keypoint_names: Sequence[str]) -> RowLayout:
    """One animal's rows: peaks (B, K, 3) as (x, y, score), K rows a frame (`trajectories.keypoint_table`)."""
    names = list(keypoint_names)

    def table(frames: np.ndarray, times: np.ndarray, peaks: np.ndarray) -> pa.Table:
        return trajectories.keypoint_table(frames, times, peaks, names)

    return RowLayout(trajectories.SCHEMA, len(names), table)


def shard_path(predictions_dir: str | Path, shard: Shard) -> Path:
    """Where a shard's file goes: `<predictions_dir>/<video>/shard-NNNNN.parquet`."""
    return Path(predictions_dir) / shard.video / f"shard-{shard.index:05d}.parquet"


def join_video(
    shard_paths: Sequence[str | Path],
    n_frames: int,
    out_path: str | Path,
    *,
    start: int = 0,
    tracking: TrackerConfig | None = None,
) -> pa.Table:
    """A video's shard files into its trajectory file, covering frames [start, n_frames); the rows written.

    One animal's shards are joined (`trajectories.aggregate_shards`); shards of untracked
    detections (a top-down model's) are joined and tracked (`posecore.multi.aggregate.track_shards`,
    with `tracking`, or the settings recorded in the shards).

    Raises:
        InputError: the shards do not cover the frames (naming the shard), or see `track_shards`.
    """
    if shard_paths and trajectories.is_multi_animal(pq.read_schema(shard_paths[0])):
        from posecore.multi.aggregate import track_shards

        return track_shards(shard_paths, n_frames, out_path, tracking, start=start)
    return trajectories.aggregate_shards(shard_paths, n_frames, out_path, start=start)


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
        layout: what the rows of a batch are; default one animal's keypoints (`keypoint_rows`).
    """

    def __init__(
        self,
        predictions_dir: str | Path,
        keypoint_names: Sequence[str],
        metadata_of: Callable[[Shard], dict[bytes, bytes]],
        layout: RowLayout | None = None,
    ) -> None:
        self.predictions_dir = Path(predictions_dir)
        self.layout = layout or keypoint_rows(keypoint_names)
        self.metadata_of = metadata_of
        self.results: list[ShardResult] = []
        self._queue: queue.Queue = queue.Queue(maxsize=64)
        self._open: dict[Shard, _Open] = {}
        self._failure: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, name="posecore-write", daemon=True)
        self._thread.start()

    def rows(self, shard: Shard, frames: np.ndarray, times: np.ndarray, peaks: Any) -> None:
        """Queue the rows of frames (B,) at times (B,) for `shard`'s file.

        `peaks` is the predictor's output for them: for one animal, (B, K, 3) as (x, y, score);
        otherwise what the writer's `RowLayout` takes.
        """
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

    def _rows(self, shard: Shard, frames: np.ndarray, times: np.ndarray, peaks: Any) -> None:
        handle = self._open.get(shard) or self._start(shard)
        handle.pending.append(self.layout.table(frames, times, peaks))
        handle.pending_rows += len(frames) * self.layout.rows_per_frame
        if handle.pending_rows >= ROW_GROUP_ROWS:
            self._flush(handle)

    def _start(self, shard: Shard) -> _Open:
        path = shard_path(self.predictions_dir, shard)
        tmp = temporary_path(path)  # an earlier job's, killed mid-shard, removed
        schema = self.layout.schema.with_metadata(self.metadata_of(shard))
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
        expected = shard.n_frames * self.layout.rows_per_frame
        if error is None and handle.rows + handle.pending_rows != expected:
            got = (handle.rows + handle.pending_rows) // max(self.layout.rows_per_frame, 1)
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
