"""One video, or a range of its frames, to one trajectory file: the archive's way, for `posecore predict`.

The range is cut into shards (at least one per decoder, so that every decoder has work), run as
one job (`posecore.infer.job.run_job`) into a scratch folder beside the output, joined into the
output file (`posecore.infer.shards.join_video`: a top-down model's detections are tracked there),
and the scratch folder removed.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posecore.errors import InputError
from posecore.infer.job import Video, run_job
from posecore.infer.plan import frames_per_reference, plan_shards
from posecore.infer.shards import join_video, shard_path
from posecore.io.video import VideoInfo
from posecore.models.export import LoadedModel

if TYPE_CHECKING:
    from posecore.multi.predict import TopDownModel
    from posecore.multi.tracking import TrackerConfig

FRAMES_PER_SHARD = 9000  # 640x480 frames, as the workflow's default (config inference.frames_per_shard)


def infer_video(
    video: str | Path,
    info: VideoInfo,
    model: LoadedModel | TopDownModel,
    out_path: str | Path,
    *,
    start: int = 0,
    stop: int | None = None,
    decoders: int = 1,
    tracking: TrackerConfig | None = None,
    **job: Any,
) -> int:
    """Keypoints of frames [start, stop) of `video` into the trajectory file `out_path`.

    Args:
        video: the video file.
        info: its probe.
        model: the loaded model (a top-down model's detections are tracked).
        out_path: the Parquet file to write (columns of `posecore.io.trajectories.SCHEMA`, or
            `MULTI_ANIMAL_SCHEMA` for a top-down model).
        start: the first frame.
        stop: one past the last frame (default: the end).
        decoders: shards decoded at once.
        tracking: a top-down model's tracker settings (required for one).
        **job: the other settings of `posecore.infer.job.run_job` (device, batch_size, ...).

    Returns:
        The number of rows written: frames times keypoints (times tracks, for a top-down model).

    Raises:
        InputError: the video cannot be decoded over the range (names the file and the frame).
    """
    stop = info.n_frames if stop is None else stop
    work = (stop - start) * frames_per_reference(info)
    per_shard = max(1, min(FRAMES_PER_SHARD, math.ceil(work / max(decoders, 1))))
    out_path = Path(out_path)
    scratch = out_path.with_name(f".{out_path.stem}.shards")
    shards = plan_shards(out_path.stem, info, per_shard, start, stop)
    try:
        results = run_job(shards, {out_path.stem: Video(Path(video), info)}, model, scratch, decoders=decoders, **job)
        failed = next((r for r in results if r.status == "failed"), None)
        if failed is not None:
            raise failed.exception or InputError(video, failed.error)
        table = join_video([shard_path(scratch, s) for s in shards], stop, out_path, start=start, tracking=tracking)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return table.num_rows
