from __future__ import annotations

from pathlib import Path

from posecore.qc.failures import failed_jobs, failure_notice, find_failures, last_error

CHAINED = """\
some progress output
Traceback (most recent call last):
  File "/x/scripts/aggregate.py", line 9, in <module>
    aggregate_shards(shards, n, out)
KeyError: 'frame'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/x/scripts/aggregate.py", line 11, in <module>
    raise InputError(path, "missing column frame")
    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
posecore.errors.InputError: results/predictions/m/v/shard-00001.parquet: missing column frame
"""


def _log(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _trajectories(root: Path, video: str) -> None:
    folder = root / "trajectories" / f"video={video}"
    folder.mkdir(parents=True)
    (folder / "part-0.parquet").write_bytes(b"PAR1")


def test_last_error_is_the_exception_line_of_the_last_traceback():
    assert last_error(CHAINED) == "InputError: results/predictions/m/v/shard-00001.parquet: missing column frame"
    assert last_error("Traceback (most recent call last):\n  File 'x'\nValueError\n") == "ValueError"
    assert last_error("loading\n[h264 @ 0x1] error while decoding MB 3 4\ndone\n") == (
        "[h264 @ 0x1] error while decoding MB 3 4"
    )
    assert last_error("epoch 1 loss 0.3\nepoch 2 loss 0.2\n") is None
    assert last_error("") is None


def test_real_traceback_of_the_fabricated_archive_names_the_file(archive_inputs):
    log = archive_inputs.logs_dir / "probe_video" / "mouse-002.log"
    error = last_error(log.read_text())
    assert error.startswith("VideoError: ")
    assert str(archive_inputs.video_paths["mouse-002"]) in error
    assert "truncated" in error


def test_first_failed_job_in_run_order_wins_and_only_unfinished_jobs_count(tmp_path):
    logs = tmp_path / "logs"
    _log(logs, "probe_video/a.log", "")
    memory = "Traceback (most recent call last):\n  x\nRuntimeError: CUDA out of memory\n"
    job = _log(logs, "infer/m/00001.log", memory)  # a job that died: no record
    _log(logs, "infer/m/00002.log", "shard 3 failed: VideoError: error in frame 4\n")  # finished, with a record
    _log(logs, "infer/other-model/00000.log", "Traceback (most recent call last):\n  x\nValueError: no\n")
    _log(logs, "probe_video/c.log", CHAINED)
    _log(logs, "aggregate/m/c.log", "Traceback (most recent call last):\n  x\nOSError: later\n")
    _log(logs, "aggregate/m/e.log", "Traceback (most recent call last):\n  x\nInputError: v.mp4: shard 3 failed\n")
    unfinished = {"a": ["00001"], "b": ["00000"], "e": []}
    failures = find_failures(logs, "m", ["a", "b", "c", "d", "e"], unfinished_jobs=unfinished)
    assert failures == {
        "a": f"infer 00001 failed ({job}): RuntimeError: CUDA out of memory",
        "c": f"probe_video failed ({logs / 'probe_video/c.log'}): InputError: "
        "results/predictions/m/v/shard-00001.parquet: missing column frame",
        "e": f"aggregate failed ({logs / 'aggregate/m/e.log'}): InputError: v.mp4: shard 3 failed",
    }


def test_a_video_with_trajectories_is_not_failed_and_one_without_is(tmp_path):
    logs = tmp_path / "logs"
    _log(logs, "aggregate/m/retried.log", "Traceback (most recent call last):\n  x\nOSError: disk full\n")
    _trajectories(tmp_path, "retried")
    _trajectories(tmp_path, "fine")
    failures = find_failures(logs, "m", ["retried", "fine", "killed"], trajectories_dir=tmp_path / "trajectories")
    assert list(failures) == ["killed"]
    assert failures["killed"].startswith("no trajectories, and no error in its logs")


def test_only_the_tail_of_a_huge_log_is_read(tmp_path):
    logs = tmp_path / "logs"
    noise = "progress line that says nothing\n" * 200_000  # 6 MB
    old = "Traceback (most recent call last):\n  x\nValueError: old\n"
    _log(logs, "probe_video/v.log", old + noise + "error: new\n")
    assert find_failures(logs, "m", ["v"]) == {"v": f"probe_video failed ({logs / 'probe_video/v.log'}): error: new"}


RUN_LOG = """Select jobs to execute...
[Sat Dec  5 16:01:31 2026]
Error in rule train:
    message: None
    jobid: 3
    input: results/datasets/demo.h5
    output: results/models/demo/model.pt
    log: logs/train/demo.log (check log file(s) for error details)
Error in group prepare:
    jobs:
        rule probe_video:
            jobid: 7
Error in rule train:
    message: None
    log: logs/train/demo.log (check log file(s) for error details)
Shutting down, this might take some time.
"""


def test_the_failed_jobs_of_a_run_come_from_snakemakes_log_once_each(tmp_path):
    assert failed_jobs(RUN_LOG) == [("train", Path("logs/train/demo.log")), ("group prepare", None)]
    assert failed_jobs("Complete log: x\n") == []
    log = _log(tmp_path, "train/demo.log", "Traceback (most recent call last):\n  x\nValueError: growth_rate 0\n")
    assert failure_notice([("train", log), ("group prepare", None)]) == [
        f"train failed ({log}): ValueError: growth_rate 0",
        "group prepare failed",
    ]
