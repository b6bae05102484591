"""The workflow through profiles/slurm on a real single-node SLURM cluster, with faults.

One run does inference of a tiny project through SLURM from a model trained by a local run,
while the test cancels the running inference job with `scancel` once some of its shards are
finished, and a test copy of the profile gives probing too little memory on its first attempt.
Snakemake must retry both and end with trajectories equal to the local run's, the retried
inference job keeping the shards finished before the cancel.
"""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from posecore.infer.archive import read_record

from .conftest import (
    PROFILE,
    SlurmJob,
    copy_profile,
    copy_project,
    last_job_id,
    read_trajectories,
    run_snakemake,
    slurm_jobs,
    snakemake_command,
    snakemake_env,
    trajectories_targets,
)

pytestmark = pytest.mark.slow

N_SHARDS = 8  # 2 videos of 60 frames in shards of 15, all in one inference job


@dataclass(frozen=True)
class SlurmRun:
    """What a SLURM run left: its folder, Snakemake's output, SLURM's jobs and the cancelled one."""

    workdir: Path
    result: subprocess.CompletedProcess
    jobs: list[SlurmJob]
    cancelled: int | None
    shards_at_cancel: dict[Path, int]


def cancel_inference_mid_job(workdir: Path, done: threading.Event, record: dict, after: int) -> None:
    """Cancel the running inference job of `workdir` once it has finished a shard (noting their files)."""
    while not done.is_set():
        jobs = slurm_jobs(workdir, after)
        running = [j for j in jobs if j.comment.startswith("rule_infer_") and j.state == "RUNNING"]
        shards = list((workdir / "results" / "predictions").rglob("shard-*.parquet"))
        if running and shards:
            subprocess.run(["scancel", str(running[0].job_id)], check=True, timeout=30)
            record["cancelled"] = running[0].job_id
            # Shards finished by the time the cancel took effect (a file is complete once it exists).
            time.sleep(1)
            finished = (workdir / "results" / "predictions").rglob("shard-*.parquet")
            record["shards"] = {path: path.stat().st_mtime_ns for path in finished}
            return
        time.sleep(0.2)


@pytest.fixture(scope="module")
def slurm_run(slurm_cluster, local_project, tmp_path_factory) -> SlurmRun:
    workdir = copy_project(local_project, tmp_path_factory.mktemp("slurm-run") / "project")
    # The first attempt of the batch's prepare job gets 2 x 50 MB (its two videos are probed
    # side by side), less than Snakemake itself needs; the second 2 x 400 MB.
    too_little = {"mem_mb": "50 * attempt ** 3"}
    profile = copy_profile(tmp_path_factory.mktemp("profile") / "slurm", probe_video=too_little)
    command = snakemake_command(workdir, profile, *trajectories_targets())
    done, record = threading.Event(), {}
    before = last_job_id()
    watcher = threading.Thread(target=cancel_inference_mid_job, args=(workdir, done, record, before), daemon=True)
    watcher.start()
    try:
        result = subprocess.run(command, capture_output=True, text=True, env=snakemake_env(), timeout=600)
    finally:
        done.set()
        watcher.join(timeout=30)
    jobs = slurm_jobs(workdir, after=before)
    return SlurmRun(workdir, result, jobs, record.get("cancelled"), record.get("shards", {}))


def test_trajectories_equal_the_local_run(slurm_run, local_project):
    assert slurm_run.result.returncode == 0, slurm_run.result.stderr[-6000:]
    on_slurm, local = read_trajectories(slurm_run.workdir), read_trajectories(local_project)
    assert len(on_slurm) == 2 * 60 * 6, "one row per frame and keypoint of both videos"
    # Equal up to float32 rounding: the same model on the same frames, but convolutions may
    # sum in another order in another process (seen: 1e-4 px at most).
    pd.testing.assert_frame_equal(on_slurm, local, check_exact=False, rtol=0, atol=1e-3)
    pd.testing.assert_frame_equal(on_slurm.drop(columns=["x", "y", "score"]), local.drop(columns=["x", "y", "score"]))


def test_a_cancelled_job_is_retried_and_keeps_the_shards_it_had_finished(slurm_run):
    assert slurm_run.cancelled is not None, "the inference job ran and was cancelled"
    assert 0 < len(slurm_run.shards_at_cancel) < N_SHARDS, "it was cancelled with shards done and left to do"
    inference = [job for job in slurm_run.jobs if job.comment.startswith("rule_infer_")]
    # One job for both videos, and again after it was cancelled.
    assert [job.state for job in inference] == ["CANCELLED", "COMPLETED"]
    assert inference[0].job_id == slurm_run.cancelled
    assert "Trying to restart job" in slurm_run.result.stderr
    # The retry kept every shard finished before the cancel, and made only the others.
    assert {path: path.stat().st_mtime_ns for path in slurm_run.shards_at_cancel} == slurm_run.shards_at_cancel
    record = read_record(slurm_run.workdir / "results" / "predictions" / "demo" / "jobs" / "00000.tsv")
    assert sum(r.status == "kept" for r in record) == len(slurm_run.shards_at_cancel)
    assert sum(r.status == "done" for r in record) == N_SHARDS - len(slurm_run.shards_at_cancel)


def test_a_job_killed_for_memory_is_retried_with_more(slurm_run):
    prepare = [job for job in slurm_run.jobs if job.comment.startswith("rule_prepare")]
    # One job for the batch: 100 MB on attempt 1, killed; 800 MB on attempt 2.
    assert [(job.state, job.memory_mb) for job in prepare] == [("FAILED", 100), ("COMPLETED", 800)]
    for job in prepare[:1]:
        failed_log = next((slurm_run.workdir / ".snakemake" / "slurm_logs").rglob(f"{job.job_id}.log"))
        assert "exceeded memory limit" in failed_log.read_text()


def test_many_shards_go_out_as_few_slurm_jobs(slurm_run):
    shards = list((slurm_run.workdir / "results" / "predictions" / "demo").rglob("shard-*.parquet"))
    assert len(shards) == N_SHARDS
    # One job probes the batch of both videos, one runs the 8 shards (planning and aggregation
    # run beside Snakemake): 2 jobs, and the retries of the one killed for memory and of the
    # cancelled one.
    kinds = sorted(job.comment.split("_")[1] for job in slurm_run.jobs)
    assert kinds == ["infer"] * 2 + ["prepare"] * 2
    assert all(job.cpus <= 2 for job in slurm_run.jobs)


def test_an_unknown_partition_fails_with_slurms_message(slurm_cluster, local_project, tmp_path):
    workdir = copy_project(local_project, tmp_path / "project")
    profile = copy_profile(tmp_path / "profile")
    config = yaml.safe_load((profile / "config.yaml").read_text())
    config["default-resources"]["slurm_partition"] = "'nosuch'"
    (profile / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    started, before = time.monotonic(), last_job_id()
    # A job outside any group: Snakemake 9.27 shows no executor message for a group job.
    model = "results/models/demo/model.pt"
    result = run_snakemake(workdir, model, "--forcerun", "train", profile=profile, timeout=180)
    assert result.returncode != 0
    assert "Invalid partition name specified" in result.stderr
    assert time.monotonic() - started < 120, "it fails at submission, it does not wait"
    assert not slurm_jobs(workdir, after=before)


def test_gpus_on_a_cluster_without_them_fail_with_slurms_message(slurm_cluster, local_project, tmp_path):
    workdir = copy_project(local_project, tmp_path / "project")
    model, before = "results/models/demo/model.pt", last_job_id()
    result = run_snakemake(workdir, model, "--forcerun", "train", "--config", "gpus=1", profile=PROFILE, timeout=180)
    assert result.returncode != 0
    assert "Invalid generic resource (gres) specification" in result.stderr
    assert "--gpus=1" in result.stderr, "the message shows the sbatch call"
    assert not slurm_jobs(workdir, after=before)
