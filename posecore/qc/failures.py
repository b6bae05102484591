"""Failed videos: which job of a video failed, and the error it logged.

A video whose jobs failed has no trajectories; the report lists it with the message of the
job that failed first. Every workflow script sends its stderr to its `log:` file, so an
uncaught exception leaves a Python traceback there, whose last line is the error (posecore
raises `InputError`, whose text names the file and what is wrong). The logs of one video, in
the order its jobs run:

    logs/probe_video/{video}.log
    logs/infer/{model}/{job}.log        (the inference jobs that hold its shards)
    logs/aggregate/{model}/{video}.log

An inference job that finished wrote its record, which lists its failed shards; their error is
then the error of the video's aggregation. So a job's log counts only for a job that did not
finish (no record): killed, out of memory, or failed as a whole.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

_TAIL_BYTES = 65536  # an error is at the end of a log; a long log is read from here on
_MAX_MESSAGE = 600  # characters of a message kept for the report
_TRACEBACK = "Traceback (most recent call last):"
_EXCEPTION_LINE = re.compile(r"(?:[A-Za-z_]\w*\.)*([A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt|Failure))(:.*)?$")
_ERROR_WORD = re.compile(r"\berror\b", re.IGNORECASE)


def last_error(text: str) -> str | None:
    """The error at the end of a log: the exception line of its last traceback, if any.

    The exception's class is shown without its module (`VideoError: ...` for
    `posecore.io.video.VideoError: ...`). A log without a traceback gives its last line that has
    the word "error" in it (ffmpeg's or the scheduler's own messages), or None.

    Args:
        text: the log's text (or its tail).

    Returns:
        The error, one line, at most a few hundred characters; None when the log shows none.
    """
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == _TRACEBACK]
    if starts:
        # Frames and source lines of a traceback are indented; the exception line is not.
        for line in lines[starts[-1] + 1 :]:
            if line.strip() and not line[0].isspace():
                return _shorten(_strip_module(line.strip()))
    for line in reversed(lines):
        if _ERROR_WORD.search(line):
            return _shorten(line.strip())
    return None


def _strip_module(line: str) -> str:
    """`package.module.SomeError: text` as `SomeError: text`; other lines unchanged."""
    match = _EXCEPTION_LINE.match(line)
    return f"{match.group(1)}{match.group(2) or ''}" if match else line


def _shorten(message: str) -> str:
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 2] + " …"


def _read_tail(path: Path) -> str:
    """The last `_TAIL_BYTES` of a log, decoded leniently."""
    with open(path, "rb") as file:
        size = file.seek(0, 2)
        file.seek(max(0, size - _TAIL_BYTES))
        return file.read().decode("utf-8", "replace")


def video_logs(logs_dir: Path, model: str, video: str, unfinished_jobs: Sequence[str] = ()) -> list[tuple[str, Path]]:
    """The logs of one video's jobs that exist, in the order the jobs run, with the job's name.

    Args:
        logs_dir: the workflow's `logs/` folder.
        model: the model.
        video: the video.
        unfinished_jobs: the inference jobs holding the video's shards that left no record.

    Returns:
        (job, log path) pairs; an inference job is named `infer <job>`.
    """
    logs_dir = Path(logs_dir)
    found = [("probe_video", logs_dir / "probe_video" / f"{video}.log")]
    found += [(f"infer {job}", logs_dir / "infer" / model / f"{job}.log") for job in unfinished_jobs]
    found.append(("aggregate", logs_dir / "aggregate" / model / f"{video}.log"))
    return [(job, path) for job, path in found if path.is_file()]


def has_trajectories(trajectories_dir: Path, video: str) -> bool:
    """Whether `trajectories_dir/video=<video>/` holds at least one Parquet file."""
    folder = Path(trajectories_dir) / f"video={video}"
    return folder.is_dir() and any(folder.glob("*.parquet"))


def find_failures(
    logs_dir: Path,
    model: str,
    videos: Sequence[str],
    *,
    trajectories_dir: Path | None = None,
    unfinished_jobs: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, str]:
    """The failed videos and why: the first of their jobs (in run order) whose log shows an error.

    A video with trajectories is not failed, whatever its logs say (a job that failed and then
    succeeded on a retry). Given `trajectories_dir`, a video without trajectories and without an
    error in its logs is listed too, as having none (its job was killed, or has not run yet).

    Args:
        logs_dir: the workflow's `logs/` folder.
        model: the model whose `infer` and `aggregate` logs to read.
        videos: the videos to look at (the sheet's names).
        trajectories_dir: the model's trajectories (`video=<name>/*.parquet`), if known.
        unfinished_jobs: by video, the inference jobs holding its shards that left no record.

    Returns:
        Message by video name, for the failed videos only, in the order of `videos`, e.g.
        `"probe_video failed (logs/probe_video/v.log): VideoError: data/v.mp4: truncated ..."`;
        an aggregation's error says which shards failed.
    """
    failures = {}
    for video in videos:
        if trajectories_dir is not None and has_trajectories(trajectories_dir, video):
            continue
        errors = []
        for job, path in video_logs(logs_dir, model, video, (unfinished_jobs or {}).get(video, ())):
            error = last_error(_read_tail(path))
            if error is not None:
                errors.append((job, path, error))
        if errors:
            job, path, error = errors[0]
            failures[video] = f"{job} failed ({path}): {error}"
        elif trajectories_dir is not None:
            failures[video] = f"no trajectories, and no error in its logs under {logs_dir} (killed, or not run yet)"
    return failures


_RUN_ERROR = re.compile(r"^Error in (rule|group) ([\w.-]+):\n((?:[ \t]+.*\n?)*)", re.MULTILINE)
_RUN_ERROR_LOG = re.compile(r"^\s+log: (\S+)", re.MULTILINE)


def failed_jobs(run_log: str) -> list[tuple[str, Path | None]]:
    """The jobs a Snakemake run reports as failed, from its log: (rule or group, the job's log).

    Args:
        run_log: the text of Snakemake's log of the run (`.snakemake/log/...snakemake.log`).

    Returns:
        Each failed job once, in the order they failed: "train", or "group prepare" for a job
        group, with the first log file it names (None when it names none).
    """
    found: list[tuple[str, Path | None]] = []
    for match in _RUN_ERROR.finditer(run_log):
        kind, name, block = match.groups()
        log = _RUN_ERROR_LOG.search(block)
        job = (name if kind == "rule" else f"group {name}", Path(log.group(1)) if log else None)
        if job not in found:
            found.append(job)
    return found


def failure_notice(jobs: Sequence[tuple[str, Path | None]]) -> list[str]:
    """One line per failed job: its name, its log and the error at the end of that log."""
    lines = []
    for job, log in jobs:
        error = last_error(_read_tail(log)) if log is not None and log.is_file() else None
        where = f" ({log})" if log is not None else ""
        lines.append(f"{job} failed{where}" + (f": {error}" if error else ""))
    return lines
