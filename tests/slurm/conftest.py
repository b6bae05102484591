"""A real single-node SLURM cluster for the session, and a tiny project run locally for reference."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ..workflow.conftest import snakemake, write_config
from . import cluster

REPO = Path(__file__).resolve().parents[2]
SNAKEFILE = REPO / "workflow" / "Snakefile"
PROFILE = REPO / "profiles" / "slurm"
VIDEOS = ("mouse-000", "mouse-001")
# Results that the SLURM run makes again from the locally trained model.
INFERENCE_RESULTS = ("results/videos", "results/shards", "results/predictions", "results/trajectories", "results/jobs")


@dataclass(frozen=True)
class SlurmJob:
    """One job as `squeue` lists it: id, state, comment (rule or group), memory (MB), CPUs."""

    job_id: int
    state: str
    comment: str
    memory_mb: int
    cpus: int


@pytest.fixture(scope="session")
def slurm_cluster():
    """The test cluster, started (and its packages installed) when not running; stopped at the end."""
    if os.geteuid() != 0 and cluster.missing_packages():
        pytest.skip("a SLURM cluster needs root, or munge/slurmctld/slurmd installed and running")
    was_running = cluster.is_running()
    try:
        node = cluster.start()
    except cluster.ClusterUnavailable as error:
        pytest.skip(f"no test SLURM cluster: {error}")
    yield node
    if not was_running:
        cluster.stop()


def trajectories_targets() -> list[str]:
    """The record of the tiny project's one batch of probes (both videos: inference.videos_per_job
    2, one SLURM job) and the trajectories of both videos (one inference job for both)."""
    return [
        "results/jobs/prepare-00000.txt",
        *(f"results/trajectories/demo/video={video}/part-0.parquet" for video in VIDEOS),
    ]


def read_trajectories(workdir: Path) -> pd.DataFrame:
    """Every trajectory row of a project, in a stable order."""
    table = pd.read_parquet(workdir / "results" / "trajectories" / "demo")
    for column in ("video", "keypoint"):
        table[column] = table[column].astype(str)
    return table.sort_values(["video", "frame", "instance", "keypoint"]).reset_index(drop=True)


def snakemake_command(workdir: Path, profile: Path, *args: str) -> list[str]:
    """Snakemake on the repository's workflow in `workdir` through a SLURM profile, sized for one 2-CPU node."""
    return [
        sys.executable, "-m", "snakemake",
        "--snakefile", str(SNAKEFILE),
        "--directory", str(workdir),
        "--workflow-profile", str(profile),
        "--cores", "2",
        "--latency-wait", "5",
        "--slurm-init-seconds-before-status-checks", "1",
        *args,
    ]  # fmt: skip


def snakemake_env() -> dict[str, str]:
    """The environment of a Snakemake run: this interpreter's scripts first on PATH."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def run_snakemake(
    workdir: Path, *args: str, profile: Path = PROFILE, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run Snakemake through SLURM to the end; output captured as text, no check of the exit status."""
    command = snakemake_command(workdir, profile, *args)
    return subprocess.run(command, capture_output=True, text=True, env=snakemake_env(), timeout=timeout)


def slurm_jobs(workdir: Path, after: int = 0) -> list[SlurmJob]:
    """The jobs SLURM still lists (finished ones for MinJobAge) that ran in `workdir`, oldest first.

    Only jobs with an id above `after` (`last_job_id()` before a run): a run of the suite minutes
    before, with the same --basetemp, ran jobs in the same folder that SLURM may still list.
    """
    jobs = [job for job in _listed_jobs(workdir) if job.job_id > after]
    return sorted(jobs, key=lambda job: job.job_id)


def last_job_id() -> int:
    """The highest job id SLURM lists now (0 if none)."""
    return max((job.job_id for job in _listed_jobs(None)), default=0)


def _listed_jobs(workdir: Path | None) -> list[SlurmJob]:
    """The jobs squeue lists, finished ones included, of `workdir` (None: of any folder)."""
    result = subprocess.run(
        ["squeue", "--noheader", "--states=all", "--format=%i|%T|%k|%m|%C|%Z"],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    jobs = []
    for line in result.stdout.splitlines():
        job_id, state, comment, memory, cpus, folder = line.split("|", 5)
        if workdir is None or Path(folder) == workdir:
            jobs.append(SlurmJob(int(job_id), state, comment, _megabytes(memory), int(cpus)))
    return jobs


def _megabytes(memory: str) -> int:
    units = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}
    return int(float(memory[:-1]) * units[memory[-1]]) if memory[-1] in units else int(memory)


def copy_profile(destination: Path, **set_resources: dict) -> Path:
    """A copy of profiles/slurm with `set-resources` entries added or replaced, per rule."""
    shutil.copytree(PROFILE, destination)
    profile = yaml.safe_load((destination / "config.yaml").read_text())
    for rule, resources in set_resources.items():
        profile["set-resources"][rule] = {**profile["set-resources"].get(rule, {}), **resources}
    (destination / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return destination


def copy_project(source: Path, destination: Path) -> Path:
    """A copy of a finished project without the results that inference makes (model and dataset kept)."""
    shutil.copytree(source, destination, symlinks=True)
    for folder in (*INFERENCE_RESULTS, "logs", "benchmarks", ".snakemake/slurm_logs"):
        shutil.rmtree(destination / folder, ignore_errors=True)
    return destination


@pytest.fixture(scope="session")
def local_project(tmp_path_factory) -> Path:
    """A synthetic archive of 2 videos of 60 frames (4 shards each), trained for 1 epoch and run locally."""
    from posecore.synth import SynthConfig, make_archive

    workdir = tmp_path_factory.mktemp("slurm-local")
    make_archive(workdir / "data" / "demo", SynthConfig(n_videos=2, n_frames=60, n_labeled_per_video=12, seed=5))
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    # Accuracy does not matter here, only that SLURM and a local run agree.
    config["train"] = {**config["train"], "max_epochs": 1}
    # 160x128 frames are worth 1/15 of a 640x480 one: shards of 15 frames (4 a video), one job
    # of 120 frames for both videos.
    config["inference"] = {
        **config["inference"],
        "frames_per_shard": 1,
        "frames_per_job": 8,
        "batch_size": 4,
        "videos_per_job": 2,
    }
    write_config(workdir, config, [(video, f"data/demo/videos/{video}.mp4", False) for video in VIDEOS])
    snakemake(workdir, *trajectories_targets())
    return workdir
