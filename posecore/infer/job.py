"""An inference job: one process, the model loaded once, many shards decoded side by side.

`run_job` keeps every shard whose file is already finished (`posecore.infer.shards`), decodes
the others with several decoders at once (`posecore.infer.decoders`), runs the model on their
batches as they come, and hands the keypoints to a writer thread that streams each shard's
file and renames it into place when the shard ends. A shard whose video cannot be decoded
(bad input: `InputError`) fails alone, recorded with its error; the job goes on with the
others. Anything else (out of memory on the CPU, a missing ffmpeg, a kill) stops the job, and
its finished shard files stay for the rerun.

It returns what became of each shard: done, kept (made before) or failed, with its error
(the workflow's job record, `posecore.infer.archive`).

A top-down model file (several animals per frame, `posecore.multi.predict`) runs the same way
through its `TopDownPredictor`: each shard then holds the frames' untracked detections,
`max_animals` slots a frame (`detection_rows`), which the video's aggregation tracks.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from posecore.errors import InputError
from posecore.hugepages import reuse_large_buffers
from posecore.infer.decoders import Frames, ShardEnd, ShardSource, decode_shards
from posecore.infer.plan import Shard
from posecore.infer.shards import KEY, RowLayout, ShardKey, ShardResult, ShardWriters, is_finished, shard_path
from posecore.io import trajectories
from posecore.io.video import VideoInfo
from posecore.models.export import LoadedModel, ModelMeta
from posecore.multi.predict import TopDownModel, TopDownPredictor, detection_rows, load_any_model
from posecore.predict import CompileMode, Precision, Predictor

logger = logging.getLogger(__name__)

DECODER = "ffmpeg"  # the decoder that makes every frame: ffmpeg's own, on the CPU


@dataclass(frozen=True)
class Video:
    """A video of a job: its file and its probe."""

    path: Path
    info: VideoInfo


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
    """Give the model `threads` CPU threads (intra-op); decoding runs in ffmpeg's own processes beside them."""
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    torch.set_num_threads(threads)


def run_job(
    shards: Sequence[Shard],
    videos: Mapping[str, Video],
    model: str | Path | LoadedModel | TopDownModel,
    predictions_dir: str | Path,
    *,
    device: str = "cpu",
    batch_size: int = 16,
    decoders: int = 1,
    threads_per_decoder: int | None = None,
    keypoints: Sequence[str] | None = None,
    precision: Precision = "auto",
    compile: CompileMode = "auto",
    priors: bool = True,
    config: dict[str, Any] | None = None,
    progress: bool = True,
) -> list[ShardResult]:
    """Run the model over `shards`, one Parquet file each under `predictions_dir`, keeping finished ones.

    Args:
        shards: the job's shards.
        videos: the file and probe of every video a shard names.
        model: an exported model file (single-animal or top-down), or a model already loaded from one.
        predictions_dir: where shard files go (`posecore.infer.shards.shard_path`).
        device: "cpu", "cuda" or "cuda:N".
        batch_size: frames per forward pass; halved for the rest of the job when a GPU runs out
            of memory (logged).
        decoders: shards decoded at once (ffmpeg processes).
        threads_per_decoder: ffmpeg's threads per decoder (None: its own choice).
        keypoints: the keypoint names the config expects; a model with others is refused before
            any frame is decoded.
        precision: see `Predictor`.
        compile: see `Predictor`.
        priors: see `Predictor`.
        config: the workflow config, recorded in each file's provenance.
        progress: show a progress bar (frames per second) on stderr.

    Returns:
        What became of each shard, in the order of `shards`.
    """
    reuse_large_buffers()
    loaded = model if isinstance(model, (LoadedModel, TopDownModel)) else load_any_model(model, device=device)
    model_path = loaded.path or str(model)
    if keypoints is not None:
        check_keypoints(loaded.meta, keypoints, model_path)
    keys = {s: ShardKey.of(s, videos[s.video].path, loaded.sha256, priors, precision) for s in shards}
    kept = [s for s in shards if is_finished(shard_path(predictions_dir, s), keys[s])]
    todo = [s for s in shards if s not in set(kept)]
    logger.info("%d shards: %d finished before, %d to do", len(shards), len(kept), len(todo))
    results = {s: ShardResult(s, "kept") for s in kept}
    if todo:
        settings = {"batch_size": batch_size, "precision": precision, "compile": compile, "priors": priors}
        layout: RowLayout | None = None  # one animal's keypoints a frame
        if isinstance(loaded, TopDownModel):  # several animals: max_animals untracked detections a frame
            predictor = TopDownPredictor(loaded, device, **settings)
            layout = detection_rows(predictor.keypoint_names, loaded.config.max_animals)
        else:
            predictor = Predictor(loaded, device=device, **settings)
        provenance = {
            name: trajectories.Provenance.for_video(
                loaded.sha256, config or {}, video.path, info=video.info, decoder=DECODER
            )
            for name, video in videos.items()
        }

        def metadata_of(shard: Shard) -> dict[bytes, bytes]:
            return {**provenance[shard.video].to_metadata(), KEY: keys[shard].to_bytes()}

        writers = ShardWriters(predictions_dir, predictor.keypoint_names, metadata_of, layout)
        sources = [ShardSource(s, videos[s.video].path, videos[s.video].info) for s in todo]
        try:
            _run(sources, predictor, writers, decoders, threads_per_decoder, progress)
        finally:
            results.update({r.shard: r for r in writers.close()})
    return [results[s] for s in shards]


def _run(
    sources: Sequence[ShardSource],
    predictor: Predictor | TopDownPredictor,
    writers: ShardWriters,
    decoders: int,
    threads_per_decoder: int | None,
    progress: bool,
) -> None:
    """Decode `sources`, predict each batch and queue its rows; bad input fails its shard alone."""
    pin_memory = predictor.device.type == "cuda"
    total = sum(s.shard.n_frames for s in sources)
    events = decode_shards(
        sources,
        batch_size=predictor.batch_size,
        decoders=decoders,
        pin_memory=pin_memory,
        threads_per_decoder=threads_per_decoder,
    )
    with tqdm(total=total, unit="frame", desc=f"{len(sources)} shards", disable=not progress) as bar:
        for event in events:
            if isinstance(event, Frames):
                peaks = _predict(predictor, event.images)
                event.release()
                writers.rows(event.source.shard, event.indices, event.times, peaks)
                bar.update(len(event.indices))
            elif isinstance(event, ShardEnd):
                if event.error is not None and not isinstance(event.error, InputError):
                    raise event.error
                if event.error is not None:
                    logger.error("%s", event.error)
                writers.end(event.source.shard, event.error)


def _predict(predictor: Predictor | TopDownPredictor, images: np.ndarray) -> Any:
    """`predictor.predict(images)`, halving its batch size for good each time the GPU runs out of memory."""
    while True:
        try:
            return predictor.predict(images)
        except torch.cuda.OutOfMemoryError:
            if predictor.batch_size == 1:
                raise
            predictor.batch_size = max(1, predictor.batch_size // 2)
            torch.cuda.empty_cache()
            logger.warning("the GPU ran out of memory: batch size lowered to %d", predictor.batch_size)
