"""Video inference: shard plans, and one shard of one video to one Parquet file.

A shard is a frame range [start, stop) of one video. `infer_shard` streams its frames from
the video (never the whole video in memory), a background thread decoding the next batch
while the model runs on the current one, finds the peaks and writes the shard's Parquet file
atomically.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
from tqdm import tqdm

from posecore.errors import InputError
from posecore.io import trajectories
from posecore.io.video import FrameBatch, VideoInfo, read_frames
from posecore.models.export import load_model
from posecore.predict import Predictor


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


def _prefetch(batches: Iterator[FrameBatch], depth: int = 2) -> Iterator[FrameBatch]:
    """Iterate `batches` from a background thread, keeping up to `depth` batches decoded ahead."""
    done = object()
    slots: queue.Queue = queue.Queue(maxsize=depth)
    failure: list[BaseException] = []
    stop = threading.Event()

    def put(item: object) -> bool:
        """Queue `item` unless the consumer has stopped; False once it has."""
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

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


def infer_range(
    video: str | Path, start: int, stop: int, predictor: Predictor, info: VideoInfo, *, progress: bool = True
) -> pa.Table:
    """Keypoints of frames [start, stop) of `video` as a trajectory table (`trajectories.SCHEMA`)."""
    tables = []
    batches = read_frames(video, start, stop, info=info, batch_size=predictor.batch_size)
    with tqdm(
        total=stop - start, desc=f"{Path(video).name} [{start}, {stop})", unit="frame", disable=not progress
    ) as bar:
        for batch in _prefetch(batches):
            peaks = predictor.predict(batch.images)  # (B, K, 3) in image pixels
            tables.append(trajectories.keypoint_table(batch.indices, batch.times, peaks, predictor.keypoint_names))
            bar.update(len(batch.indices))
    return (
        pa.concat_tables(tables).unify_dictionaries().combine_chunks() if tables else trajectories.SCHEMA.empty_table()
    )


def infer_shard(
    video: str | Path,
    shard: Shard,
    model_path: str | Path,
    out_path: str | Path,
    *,
    info: VideoInfo,
    batch_size: int = 16,
    device: str = "cpu",
    config: dict[str, Any] | None = None,
    progress: bool = True,
) -> pa.Table:
    """Run the model on one shard of a video and write its trajectories to `out_path` atomically."""
    loaded = load_model(model_path, device=device)
    predictor = Predictor(loaded, device=device, batch_size=batch_size)
    table = infer_range(video, shard.start, shard.stop, predictor, info, progress=progress)
    if table.num_rows != (shard.stop - shard.start) * len(predictor.keypoint_names):
        raise InputError(video, f"shard {shard.index} [{shard.start}, {shard.stop}) came out incomplete")
    provenance = trajectories.Provenance.for_video(loaded.sha256, config or {}, video)
    trajectories.write_atomic(table, out_path, provenance)
    return table
