"""The inference plan: every video cut into shards, and the shards gathered into jobs.

A shard is frames [start, stop) of one video: one Parquet file, and what a rerun redoes at
most. A job is one process that loads the model once and goes through its shards. Both are
sized by work, counted in frames of 640x480 (`REFERENCE_PIXELS`): a frame of another size
counts in proportion to its pixels, as decoding and the model's forward both cost about that.

- Shards of a video start at keyframes where one lies near the nominal boundary, so that a
  shard's decoder starts where decoding can start, with nothing decoded twice.
- Jobs take shards in the order of the video sheet, a video's shards in order, until a job
  holds `frames_per_job`; a video longer than that spreads over several jobs. Adding videos at
  the end of the sheet changes only the last job; nothing else changes the plan but the videos
  (their probes) and the two sizes.

The plan is one TSV with columns job, video, shard, start, stop (`write_plan`, `read_plan`).
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posecore.errors import InputError
from posecore.io.atomic import atomic_path
from posecore.io.video import VideoInfo

REFERENCE_PIXELS = 640 * 480
COLUMNS = ("job", "video", "shard", "start", "stop")
# A shard boundary moves to the first keyframe within this fraction of a shard past it.
KEYFRAME_REACH = 0.5


@dataclass(frozen=True, order=True)
class Shard:
    """Frames [start, stop) of the video named `video`; `index` numbers a video's shards from 0."""

    video: str
    index: int
    start: int
    stop: int

    @property
    def n_frames(self) -> int:
        """The shard's number of frames."""
        return self.stop - self.start


@dataclass(frozen=True)
class PlannedShard:
    """A shard and the job that runs it."""

    job: int
    shard: Shard


def frames_per_reference(info: VideoInfo) -> float:
    """How many 640x480 frames one frame of the video is worth (its pixels over 640 * 480)."""
    return info.width * info.height / REFERENCE_PIXELS


def plan_shards(
    video: str, info: VideoInfo, frames_per_shard: int, start: int = 0, stop: int | None = None
) -> list[Shard]:
    """Cut frames [start, stop) of one video into shards of about `frames_per_shard` 640x480 frames.

    Args:
        video: the video's name.
        info: its probe (size, frame count, keyframes).
        frames_per_shard: work per shard, in 640x480 frames; at least 1 frame a shard.
        start: the first frame (default 0).
        stop: one past the last frame (default: the video's end).

    Returns:
        Consecutive shards covering [start, stop), each starting at a keyframe where one lies
        within `KEYFRAME_REACH` of a shard after its nominal start.
    """
    if frames_per_shard < 1:
        raise ValueError(f"frames_per_shard must be at least 1, got {frames_per_shard}")
    stop = info.n_frames if stop is None else stop
    if not 0 <= start <= stop <= info.n_frames:
        raise ValueError(f"{info.path}: frames [{start}, {stop}) are not inside [0, {info.n_frames})")
    length = max(1, round(frames_per_shard / frames_per_reference(info)))  # frames of this video per shard
    keyframes = np.asarray(info.keyframes, dtype=np.int64)  # (N_key,) ascending
    bounds = [start]
    while bounds[-1] + length < stop:
        nominal = bounds[-1] + length
        reach = min(stop, nominal + int(length * KEYFRAME_REACH))
        near = keyframes[(keyframes >= nominal) & (keyframes < reach)]
        bounds.append(int(near[0]) if len(near) else nominal)
    bounds.append(stop)
    return [Shard(video, i, a, b) for i, (a, b) in enumerate(itertools.pairwise(bounds)) if b > a]


def plan_jobs(
    videos: Iterable[tuple[str, VideoInfo]], frames_per_shard: int, frames_per_job: int
) -> list[PlannedShard]:
    """Shards of every video, gathered in order into jobs of about `frames_per_job` 640x480 frames.

    Args:
        videos: (name, probe) of each video, in the order of the video sheet.
        frames_per_shard: work per shard, in 640x480 frames (`plan_shards`).
        frames_per_job: work per job, in 640x480 frames; a job closes once it holds this much.

    Returns:
        Every shard with its job, jobs numbered from 0 in order.
    """
    if frames_per_job < 1:
        raise ValueError(f"frames_per_job must be at least 1, got {frames_per_job}")
    planned: list[PlannedShard] = []
    job, work = 0, 0.0
    for name, info in videos:
        scale = frames_per_reference(info)
        for shard in plan_shards(name, info, frames_per_shard):
            if work >= frames_per_job:
                job, work = job + 1, 0.0
            planned.append(PlannedShard(job, shard))
            work += shard.n_frames * scale
    return planned


def write_plan(plan: Sequence[PlannedShard], path: str | Path) -> None:
    """Write a plan as a TSV with columns job, video, shard, start, stop, atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as file:
        writer = csv.writer(file, delimiter="\t", lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows((p.job, p.shard.video, p.shard.index, p.shard.start, p.shard.stop) for p in plan)


def read_plan(path: str | Path) -> list[PlannedShard]:
    """Read a plan written by `write_plan` (with `csv`, not pandas: the workflow reads it while it builds the DAG)."""
    with open(path, newline="") as file:
        rows = csv.reader(file, delimiter="\t")
        header = tuple(next(rows, ()))
        if header != COLUMNS:
            raise InputError(path, f"an inference plan has columns {', '.join(COLUMNS)}; found {', '.join(header)}")
        try:
            return [PlannedShard(int(j), Shard(video, int(i), int(a), int(b))) for j, video, i, a, b in rows]
        except ValueError as error:
            raise InputError(path, f"not an inference plan: {error}") from error


def jobs_of(plan: Iterable[PlannedShard]) -> dict[int, list[Shard]]:
    """The shards of each job, in plan order."""
    jobs: dict[int, list[Shard]] = {}
    for planned in plan:
        jobs.setdefault(planned.job, []).append(planned.shard)
    return jobs
