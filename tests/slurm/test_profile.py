"""The workflow through profiles/slurm on a real single-node SLURM cluster, with faults.

One run does inference of a tiny project through SLURM from a model trained by a local run,
while the test cancels a running inference job with `scancel` mid-shard and a test copy of
the profile gives probing and shard planning too little memory on their first attempt. Snakemake must retry
both and end with trajectories equal to the local run's.
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

from .conftest import (
    PROFILE,
    SlurmJob,
    copy_profile,
    copy_project,
    read_trajectories,
    run_snakemake,
    slurm_jobs,
    snakemake_command,
    snakemake_env,
    trajectories_targets,
)

pytestmark = pytest.mark.slow

N_SHARDS = 6  # 2 videos of 60 frames in shards of 20


@dataclass(frozen=True)
class SlurmRun:
    """What a SLURM run left: its folder, Snakemake's output, SLURM's jobs and the cancelled one."""

    workdir: Path
    result: subprocess.CompletedProcess
    jobs: list[SlurmJob]
    cancelled: int | None
    shards_done_at_cancel: int


def cancel_inference_mid_shard(workdir: Path, done: threading.Event, record: dict) -> None:
    """Cancel the first running inference job of `workdir` once one of its shards has started."""
    while not done.is_set():
        running = [j for j in slurm_jobs(workdir) if j.comment.startswith("rule_inference") and j.state == "RUNNING"]
        if running and any((workdir / "logs" / "infer_shard").rglob("*.log")):
            record["shards_done"] = len(list((workdir / "results" / "predictions").rglob("shard-*.parquet")))
            subprocess.run(["scancel", str(running[0].job_id)], check=True, timeout=30)
            record["cancelled"] = running[0].job_id
            return
        time.sleep(0.5)


@pytest.fixture(scope="module")
def slurm_run(slurm_cluster, local_project, tmp_path_factory) -> SlurmRun:
    workdir = copy_project(local_project, tmp_path_factory.mktemp("slurm-run") / "project")
    # The first attempt of the batch's prepare job gets 2 x 150 MB (its two videos are probed
    # side by side), less than Snakemake itself needs; the second 2 x 1200 MB.
    too_little = {"mem_mb": "150 * attempt ** 3"}
    profile = copy_profile(tmp_path_factory.mktemp("profile") / "slurm", probe_video=too_little, plan_shards=too_little)
    command = snakemake_command(workdir, profile, *trajectories_targets())
    done, record = threading.Event(), {}
    watcher = threading.Thread(target=cancel_inference_mid_shard, args=(workdir, done, record), daemon=True)
    watcher.start()
    try:
        result = subprocess.run(command, capture_output=True, text=True, env=snakemake_env(), timeout=600)
    finally:
        done.set()
        watcher.join(timeout=30)
    return SlurmRun(workdir, result, slurm_jobs(workdir), record.get("cancelled"), record.get("shards_done", -1))


def test_trajectories_equal_the_local_run(slurm_run, local_project):
    assert slurm_run.result.returncode == 0, slurm_run.result.stderr[-6000:]
    on_slurm, local = read_trajectories(slurm_run.workdir), read_trajectories(local_project)
    assert len(on_slurm) == 2 * 60 * 6, "one row per frame and keypoint of both videos"
    # Equal up to float32 rounding: the same model on the same frames, but convolutions may
    # sum in another order in another process (seen: 1e-4 px at most).
    pd.testing.assert_frame_equal(on_slurm, local, check_exact=False, rtol=0, atol=1e-3)
    pd.testing.assert_frame_equal(on_slurm.drop(columns=["x", "y", "score"]), local.drop(columns=["x", "y", "score"]))


def test_a_job_cancelled_mid_shard_is_retried(slurm_run):
    assert slurm_run.cancelled is not None, "the inference job ran and was cancelled"
    assert 0 <= slurm_run.shards_done_at_cancel < N_SHARDS, "it was cancelled with shards left to do"
    inference = [job for job in slurm_run.jobs if job.comment.startswith("rule_inference")]
    # One job for the batch of both videos, and again after it was cancelled.
    assert [job.state for job in inference] == ["CANCELLED", "COMPLETED"]
    assert inference[0].job_id == slurm_run.cancelled
    # Snakemake 9.27 prints no executor message for a failed group job, only its SLURM log.
    assert f"group_inference_aggregate_infer_shard_inference_batch/{slurm_run.cancelled}.log" in slurm_run.result.stderr
    assert "Trying to restart job" in slurm_run.result.stderr


def test_a_job_killed_for_memory_is_retried_with_more(slurm_run):
    prepare = [job for job in slurm_run.jobs if job.comment.startswith("rule_prepare")]
    # One job for the batch: 300 MB on attempt 1, killed; 2400 MB on attempt 2.
    assert [(job.state, job.memory_mb) for job in prepare] == [("FAILED", 300), ("COMPLETED", 2400)]
    for job in prepare[:1]:
        failed_log = next((slurm_run.workdir / ".snakemake" / "slurm_logs").rglob(f"{job.job_id}.log"))
        assert "exceeded memory limit" in failed_log.read_text()


def test_many_shards_go_out_as_few_slurm_jobs(slurm_run):
    shards = list((slurm_run.workdir / "results" / "predictions" / "demo").rglob("shard-*.parquet"))
    assert len(shards) == N_SHARDS
    # For the batch of both videos, one job probes and plans, and one runs the 6 shards and
    # joins each video's: 2 jobs for 12, and the retries of the one killed for memory and of
    # the cancelled one.
    groups = sorted(job.comment.split("_")[1] for job in slurm_run.jobs)
    assert groups == ["inference"] * 2 + ["prepare"] * 2
    assert all(job.cpus <= 2 for job in slurm_run.jobs)


def test_an_unknown_partition_fails_with_slurms_message(slurm_cluster, local_project, tmp_path):
    workdir = copy_project(local_project, tmp_path / "project")
    profile = copy_profile(tmp_path / "profile")
    config = yaml.safe_load((profile / "config.yaml").read_text())
    config["default-resources"]["slurm_partition"] = "'nosuch'"
    (profile / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    started = time.monotonic()
    # A job outside any group: Snakemake 9.27 shows no executor message for a group job.
    model = "results/models/demo/model.pt"
    result = run_snakemake(workdir, model, "--forcerun", "train", profile=profile, timeout=180)
    assert result.returncode != 0
    assert "Invalid partition name specified" in result.stderr
    assert time.monotonic() - started < 120, "it fails at submission, it does not wait"
    assert not slurm_jobs(workdir)


def test_gpus_on_a_cluster_without_them_fail_with_slurms_message(slurm_cluster, local_project, tmp_path):
    workdir = copy_project(local_project, tmp_path / "project")
    model = "results/models/demo/model.pt"
    result = run_snakemake(workdir, model, "--forcerun", "train", "--config", "gpus=1", profile=PROFILE, timeout=180)
    assert result.returncode != 0
    assert "Invalid generic resource (gres) specification" in result.stderr
    assert "--gpus=1" in result.stderr, "the message shows the sbatch call"
    assert not slurm_jobs(workdir)
