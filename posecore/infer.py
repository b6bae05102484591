"""Video inference: shard plans, and one shard of one video to one Parquet file.

A shard is a frame range [start, stop) of one video. `infer_shard` streams its frames from
the video (never the whole video in memory), a background thread decoding the next batches
while the model runs on the current one and finds the peaks, and a writer thread streams the
rows into the shard's Parquet file under a temporary name, renamed into place only once every
frame is in (so memory does not grow with the length of the shard, and a killed job leaves no
output). The model's thread allocates nothing that outlives a batch, so glibc's heap, which
keeps freed memory for the next batch (`posecore.hugepages.reuse_large_buffers`), stays flat.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from tqdm import tqdm

from posecore.errors import InputError
from posecore.hugepages import reuse_large_buffers
from posecore.io import trajectories
from posecore.io.atomic import atomic_path
from posecore.io.video import FrameBatch, VideoInfo, read_frames
from posecore.models.export import LoadedModel, ModelMeta, load_model
from posecore.predict import CompileMode, Precision, Predictor

T = TypeVar("T")
R = TypeVar("R")

ROW_GROUP_ROWS = 65536  # rows buffered before they go to the Parquet file as one row group


@dataclass(frozen=True)
class Shard:
    """Frames [start, stop) of one video; `index` numbers the shards of a video from 0."""

    index: int
    start: int
    stop: int


def plan_shards(n_frames: int, shard_size: int) -> list[Shard]:
    """Cut frames [0, n_frames) into consecutive shards of at most `shard_size` frames."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be at least 1, got {shard_size}")
    return [
        Shard(i, start, min(start + shard_size, n_frames)) for i, start in enumerate(range(0, n_frames, shard_size))
    ]


def write_shard_plan(shards: list[Shard], path: str | Path) -> None:
    """Write a shard plan as a TSV with columns shard, start, stop."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame([(s.index, s.start, s.stop) for s in shards], columns=["shard", "start", "stop"])
    frame.to_csv(path, sep="\t", index=False)


def read_shard_plan(path: str | Path) -> list[Shard]:
    """Read a shard plan written by `write_shard_plan`."""
    frame = pd.read_csv(path, sep="\t")
    if list(frame.columns) != ["shard", "start", "stop"]:
        raise InputError(path, f"a shard plan has columns shard, start, stop; found {list(frame.columns)}")
    return [Shard(int(r.shard), int(r.start), int(r.stop)) for r in frame.itertuples()]


def check_keypoints(meta: ModelMeta, expected: Sequence[str], model_path: str | Path) -> None:
    """Refuse a model whose keypoints are not `expected`, in that order.

    Raises:
        InputError: naming the model file, the keypoints missing from it, the extra ones, or
            the first position where the order differs.
    """
    got, want = list(meta.keypoint_names), list(expected)
    if got == want:
        return
    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    if missing or extra:
        detail = f"missing {missing}" if missing else ""
        detail += ("; " if missing and extra else "") + (f"not in the config {extra}" if extra else "")
    else:
        i = next(i for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b)
        detail = f"keypoint {i} is {got[i]!r}, the config says {want[i]!r}"
    raise InputError(model_path, f"the model's keypoints {got} do not match the config's {want}: {detail}")


def set_threads(threads: int) -> None:
    """Give the model `threads` CPU threads (intra-op); decoding runs in ffmpeg's own process beside them."""
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    torch.set_num_threads(threads)


def _put_while(slots: queue.Queue, item: object, waiting: Callable[[], bool]) -> bool:
    """Put `item` into `slots`, waiting for room as long as `waiting()` holds; whether it went in."""
    while waiting():
        try:
            slots.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _prefetch(batches: Iterator[FrameBatch], depth: int = 2) -> Iterator[FrameBatch]:
    """Iterate `batches` from a background thread, keeping up to `depth` batches decoded ahead."""
    done = object()
    slots: queue.Queue = queue.Queue(maxsize=depth)
    failure: list[BaseException] = []
    stop = threading.Event()

    def put(item: object) -> bool:
        """Queue `item` unless the consumer has stopped; False once it has."""
        return _put_while(slots, item, lambda: not stop.is_set())

    def produce() -> None:
        try:
            for batch in batches:
                if not put(batch):
                    break
        except BaseException as error:  # handed to the consumer, raised there
            failure.append(error)
        finally:
            getattr(batches, "close", lambda: None)()  # ends the decoder process early
            put(done)

    thread = threading.Thread(target=produce, name="posecore-decode", daemon=True)
    thread.start()
    try:
        while (item := slots.get()) is not done:
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)
    if failure:
        raise failure[0]


class _Abandoned(Exception):
    """Raised inside a background consumer whose producer failed (see `_consume_in_background`)."""


def _consume_in_background(items: Iterator[T], consume: Callable[[Iterator[T]], R], depth: int = 4) -> R:
    """`consume(iterator over items)`, run in a background thread while this thread produces `items`.

    Up to `depth` items wait between the two. If producing fails, the consumer's iterator
    raises `_Abandoned` (so a writer inside `atomic_path` leaves nothing behind) and the error is
    raised here; if consuming fails, producing stops and the consumer's error is raised here.
    """
    done, abandoned = object(), object()
    slots: queue.Queue = queue.Queue(maxsize=depth)
    result: list[R] = []
    failure: list[BaseException] = []

    def feed() -> Iterator[T]:
        while (item := slots.get()) is not done:
            if item is abandoned:
                raise _Abandoned
            yield item

    def run() -> None:
        try:
            result.append(consume(feed()))
        except _Abandoned:
            pass
        except BaseException as error:  # raised in the producing thread
            failure.append(error)

    def put(item: object) -> bool:
        """Queue `item` while the consumer runs; False once it has stopped."""
        return _put_while(slots, item, thread.is_alive)

    thread = threading.Thread(target=run, name="posecore-write", daemon=True)
    thread.start()
    end = done
    try:
        for item in items:
            if not put(item):
                break
    except BaseException:
        end = abandoned
        raise
    finally:
        getattr(items, "close", lambda: None)()
        put(end)
        thread.join()
    if failure:
        raise failure[0]
    if not result:
        raise RuntimeError("the background consumer stopped before the end of its items")
    return result[0]


def iter_peaks(
    video: str | Path, start: int, stop: int, predictor: Predictor, info: VideoInfo, *, progress: bool = True
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Keypoints of frames [start, stop) of `video`, per batch: frame indices (B,), times (B,), peaks (B, K, 3).

    Peaks are (x, y, score) in image pixels. Frames are decoded by a background thread while
    the model runs; a progress bar on stderr shows frames per second.
    """
    batches = read_frames(video, start, stop, info=info, batch_size=predictor.batch_size)
    with tqdm(
        total=stop - start, desc=f"{Path(video).name} [{start}, {stop})", unit="frame", disable=not progress
    ) as bar:
        for batch in _prefetch(batches):
            yield batch.indices, batch.times, predictor.predict(batch.images)
            bar.update(len(batch.indices))


def iter_keypoint_tables(
    video: str | Path, start: int, stop: int, predictor: Predictor, info: VideoInfo, *, progress: bool = True
) -> Iterator[pa.Table]:
    """Keypoints of frames [start, stop) of `video`, one trajectory table (`trajectories.SCHEMA`) per batch."""
    for frames, times, peaks in iter_peaks(video, start, stop, predictor, info, progress=progress):
        yield trajectories.keypoint_table(frames, times, peaks, predictor.keypoint_names)


def infer_range(
    video: str | Path, start: int, stop: int, predictor: Predictor, info: VideoInfo, *, progress: bool = True
) -> pa.Table:
    """Keypoints of frames [start, stop) of `video` as one trajectory table (`trajectories.SCHEMA`), in memory."""
    tables = list(iter_keypoint_tables(video, start, stop, predictor, info, progress=progress))
    return (
        pa.concat_tables(tables).unify_dictionaries().combine_chunks() if tables else trajectories.SCHEMA.empty_table()
    )


def write_keypoint_tables(tables: Iterator[pa.Table], out_path: str | Path, provenance: trajectories.Provenance) -> int:
    """Stream trajectory tables into one Parquet file, atomically; return the number of rows.

    Rows are written in row groups of about `ROW_GROUP_ROWS` as they come, so memory holds one
    row group, not the file. The file appears at `out_path` only when `tables` is exhausted.
    """
    schema = trajectories.SCHEMA.with_metadata(provenance.to_metadata())
    n_rows = 0
    with atomic_path(out_path) as tmp, pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        pending: list[pa.Table] = []
        pending_rows = 0
        for table in tables:
            pending.append(table)
            pending_rows += table.num_rows
            if pending_rows >= ROW_GROUP_ROWS:
                writer.write_table(pa.concat_tables(pending).unify_dictionaries().combine_chunks())
                n_rows += pending_rows
                pending, pending_rows = [], 0
        if pending:
            writer.write_table(pa.concat_tables(pending).unify_dictionaries().combine_chunks())
            n_rows += pending_rows
        if n_rows == 0:
            writer.write_table(schema.empty_table())
        writer.close()  # before the rename in atomic_path
    return n_rows


def infer_shard(
    video: str | Path,
    shard: Shard,
    model: str | Path | LoadedModel,
    out_path: str | Path,
    *,
    info: VideoInfo,
    batch_size: int = 16,
    device: str = "cpu",
    config: dict[str, Any] | None = None,
    keypoints: Sequence[str] | None = None,
    precision: Precision = "auto",
    compile: CompileMode = "auto",
    priors: bool = True,
    progress: bool = True,
) -> int:
    """Run the model on one shard of a video and write its trajectories to `out_path` atomically.

    Args:
        video: the video file.
        shard: the frames to run on.
        model: an exported model file, or a model already loaded from one.
        out_path: the shard's Parquet file (columns of `trajectories.SCHEMA`, provenance in its metadata).
        info: the video's probe.
        batch_size: frames per forward pass.
        device: "cpu", "cuda" or "cuda:N".
        config: the workflow config, recorded in the file's provenance.
        keypoints: the keypoint names the config expects; a model with others is refused
            before any frame is decoded.
        precision: see `Predictor`.
        compile: see `Predictor`.
        priors: see `Predictor`.
        progress: show a progress bar (frames per second) on stderr.

    Returns:
        The number of rows written: frames times keypoints.

    Raises:
        InputError: the model does not match `keypoints`, or the shard came out incomplete.
    """
    reuse_large_buffers()
    loaded = model if isinstance(model, LoadedModel) else load_model(model, device=device)
    model_path = loaded.path or str(model)
    if keypoints is not None:
        check_keypoints(loaded.meta, keypoints, model_path)
    predictor = Predictor(
        loaded, device=device, batch_size=batch_size, precision=precision, compile=compile, priors=priors
    )
    provenance = trajectories.Provenance.for_video(loaded.sha256, config or {}, video)
    names = predictor.keypoint_names
    expected = (shard.stop - shard.start) * len(names)

    def write(batches: Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> int:
        """Build the tables and stream them to the file, in the writer thread (its own C heap)."""

        def checked() -> Iterator[pa.Table]:
            n = 0
            for frames, times, peaks in batches:
                table = trajectories.keypoint_table(frames, times, peaks, names)
                n += table.num_rows
                yield table
            if n != expected:  # raised inside the writer: the temporary file is removed, nothing appears
                raise InputError(video, f"shard {shard.index} [{shard.start}, {shard.stop}) came out incomplete")

        return write_keypoint_tables(checked(), out_path, provenance)

    peaks = iter_peaks(video, shard.start, shard.stop, predictor, info, progress=progress)
    return _consume_in_background(peaks, write)
