"""The archive's inference as the workflow runs it: the plan, one job per process, one file per video.

Three steps, each one workflow script's single call:

- `plan_archive`: every probed video into shards and jobs (`posecore.infer.plan`), one TSV. A
  video whose probe records an error (it could not be probed) gets no shard.
- `run_planned_job`: one job's shards (`posecore.infer.job.run_job`), then its record: one row
  per shard with what became of it (done, kept, failed and why), written last, atomically.
  Shard files are written as they finish, outside Snakemake's outputs, so that a failed or
  cancelled job loses only the shards it had not finished.
- `aggregate_video`: a video's shard files joined into its trajectory file, once every job
  that holds its shards has recorded them done; a failed shard or an unprobed video raises
  its recorded error, naming the video. A top-down model's shards (several animals per frame)
  are tracked there, over the whole video (`posecore.infer.shards.join_video`).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posecore.errors import InputError
from posecore.infer.plan import Shard, plan_jobs, write_plan
from posecore.infer.shards import ShardResult, join_video, shard_path
from posecore.io.atomic import atomic_path
from posecore.io.video import VideoError, VideoInfo

if TYPE_CHECKING:
    from posecore.multi.tracking import TrackerConfig

logger = logging.getLogger(__name__)

RECORD_COLUMNS = ("video", "shard", "start", "stop", "status", "seconds", "decoder", "error")


def plan_archive(probes: Mapping[str, str | Path], frames_per_shard: int, frames_per_job: int, out: str | Path) -> None:
    """Plan the inference of every video, in the order of `probes` (video name to probe JSON), into `out`.

    Videos whose probe records an error are left out of the plan (logged), so that they fail
    alone, at their aggregation.
    """
    videos = []
    for name, path in probes.items():
        try:
            videos.append((name, VideoInfo.read_json(path)))
        except VideoError as error:
            logger.warning("%s: not planned, it could not be probed: %s", name, error)
    write_plan(plan_jobs(videos, frames_per_shard, frames_per_job), out)


def parse_shards(specs: Sequence[str]) -> list[Shard]:
    """Shards from the workflow's `video:index:start:stop` strings (a video name may hold colons)."""
    shards = []
    for spec in specs:
        video, index, start, stop = spec.rsplit(":", 3)
        shards.append(Shard(video, int(index), int(start), int(stop)))
    return shards


def run_planned_job(
    shard_specs: Sequence[str],
    video_paths: Mapping[str, str | Path],
    probes: Sequence[str | Path],
    model: str | Path,
    predictions_dir: str | Path,
    record: str | Path,
    *,
    threads: int,
    device: str = "auto",
    decoders: int = 0,
    **job: Any,
) -> None:
    """Run one planned job and write its record.

    Args:
        shard_specs: the job's shards as `video:index:start:stop`.
        video_paths: each video's file, by name.
        probes: the probes of the job's videos (each file's stem is its video's name).
        model: the exported model.
        predictions_dir: where shard files go.
        record: the job's record (TSV, `RECORD_COLUMNS`).
        threads: CPUs of the job: the model's threads, and the default number of decoders.
        device: "auto", "cpu" or "cuda" (`posecore.predict.resolve_device`).
        decoders: shards decoded at once; 0: one per CPU of the job.
        **job: the rest of `posecore.infer.job.run_job`'s settings.
    """
    from posecore.infer.job import Video, run_job, set_threads
    from posecore.predict import resolve_device

    set_threads(threads)
    infos = {Path(p).stem: VideoInfo.read_json(p) for p in probes}
    videos = {name: Video(Path(video_paths[name]), info) for name, info in infos.items()}
    decoders = decoders or threads
    results = run_job(
        parse_shards(shard_specs),
        videos,
        model,
        predictions_dir,
        device=resolve_device(device),
        decoders=decoders,
        threads_per_decoder=max(1, threads // decoders),
        **job,
    )
    write_record(results, record)


def write_record(results: Sequence[ShardResult], path: str | Path, decoder: str = "ffmpeg") -> None:
    """Write a job's record, one row per shard (`RECORD_COLUMNS`), atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as file:
        writer = csv.writer(file, delimiter="\t", lineterminator="\n")
        writer.writerow(RECORD_COLUMNS)
        for r in results:
            s = r.shard
            error = " ".join(r.error.split())  # one line
            writer.writerow((s.video, s.index, s.start, s.stop, r.status, f"{r.seconds:.3f}", decoder, error))


def read_record(path: str | Path) -> list[ShardResult]:
    """Read a job's record written by `write_record`."""
    with open(path, newline="") as file:
        rows = csv.DictReader(file, delimiter="\t")
        if tuple(rows.fieldnames or ()) != RECORD_COLUMNS:
            raise InputError(path, f"a job record has columns {', '.join(RECORD_COLUMNS)}")
        try:
            return [
                ShardResult(
                    Shard(row["video"], int(row["shard"]), int(row["start"]), int(row["stop"])),
                    row["status"],
                    float(row["seconds"]),
                    row["error"],
                )
                for row in rows
            ]
        except ValueError as error:
            raise InputError(path, f"not a job record: {error}") from error


def aggregate_video(
    video: str,
    records: Sequence[str | Path],
    probe: str | Path,
    predictions_dir: str | Path,
    out: str | Path,
    tracking: TrackerConfig | None = None,
) -> None:
    """Join a video's shard files, as its jobs' records list them, into its trajectory file `out`.

    Shards of several animals per frame are tracked, with `tracking`, or else with the
    `animals` and `tracking` sections of the workflow config recorded in the shards.

    Raises:
        VideoError: the video could not be probed (the probe's recorded error).
        InputError: a shard of the video failed (its recorded error, naming the job's record),
            or the shards do not cover the video.
    """
    info = VideoInfo.read_json(probe)
    results = [(path, r) for path in records for r in read_record(path) if r.shard.video == video]
    failed = [(path, r) for path, r in results if r.status == "failed"]
    if failed:
        path, first = failed[0]
        more = f" (and {len(failed) - 1} more shards)" if len(failed) > 1 else ""
        raise InputError(info.path, f"shard {first.shard.index} failed{more}, as {path} records: {first.error}")
    if not results:
        raise InputError(info.path, f"no shard of video {video!r} in the job records {', '.join(map(str, records))}")
    shards = sorted((r.shard for _, r in results), key=lambda s: s.start)
    join_video([shard_path(predictions_dir, s) for s in shards], info.n_frames, out, tracking=tracking)
