"""A tiny project for running the whole workflow: a synthetic archive and a config for it."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SNAKEFILE = REPO / "workflow" / "Snakefile"


def snakemake_command(workdir: Path) -> list[str]:
    """The command line that runs Snakemake on the repository's workflow in `workdir`."""
    return [
        sys.executable, "-m", "snakemake",
        "--snakefile", str(SNAKEFILE),
        "--directory", str(workdir),
        "--workflow-profile", str(REPO / "profiles" / "default"),
    ]  # fmt: skip


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run Snakemake on the repository's workflow in `workdir`; output captured as text."""
    command = [*snakemake_command(workdir), "--cores", "2", *args]
    result = subprocess.run(command, capture_output=True, text=True, env=snakemake_environment(), timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}"
        )
    return result


# The SLURM executor plugin runs `scontrol show config` whenever Snakemake starts, even for a local
# run; on a machine with SLURM's commands but no slurmctld running (this one, once tests/slurm has
# installed them and stopped its cluster) scontrol waits 9 s before giving up. A stand-in answers
# what the plugin asks (MinJobAge, SLURM's default) at once; only these local runs see it.
STAND_IN_SCONTROL = """#!/bin/sh
if [ "$1 $2" = "show config" ]; then echo "MinJobAge               = 300 sec"; else exit 1; fi
"""
_STAND_IN = Path(tempfile.mkdtemp(prefix="posecore-scontrol-"))


def snakemake_environment() -> dict[str, str]:
    """The environment for Snakemake: this interpreter's scripts (snakemake, posecore) first on PATH."""
    scontrol = _STAND_IN / "scontrol"
    if not scontrol.exists():
        scontrol.write_text(STAND_IN_SCONTROL)
        scontrol.chmod(0o755)
    path = os.pathsep.join([str(_STAND_IN), str(Path(sys.executable).parent), os.environ["PATH"]])
    return {**os.environ, "PATH": path}


def write_config(
    workdir: Path, config: dict, videos: list[tuple[str, str, bool]], refine: tuple[str, ...] = ()
) -> None:
    """Write `config/config.yaml` and `config/videos.tsv` (name, path, labeling; refine by name) into `workdir`."""
    (workdir / "config").mkdir(parents=True, exist_ok=True)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    lines = ["video\tpath\tlabeling\trefine"] + [
        f"{name}\t{path}\t{str(label).lower()}\t{str(name in refine).lower()}" for name, path, label in videos
    ]
    (workdir / "config" / "videos.tsv").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="session")
def demo_config() -> dict:
    """The bundled config, with a model small enough to train in about a minute."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["model"]["hyperparameters"] = {**config["model"]["hyperparameters"], "n_stacks": 1}
    config["train"] = {**config["train"], "max_epochs": 30}
    # 160x128 frames are worth 1/15 of a 640x480 one: shards of 30 frames, jobs of 60, so that
    # each video has 3 shards and the second video spreads over two jobs.
    config["inference"] = {**config["inference"], "frames_per_shard": 2, "frames_per_job": 4, "batch_size": 8}
    return config


@pytest.fixture(scope="session")
def tiny_project(tmp_path_factory, demo_config) -> Path:
    """A project folder holding a synthetic archive (2 videos of 80 frames) and its config."""
    from posecore.synth import SynthConfig, make_archive

    workdir = tmp_path_factory.mktemp("project")
    make_archive(workdir / "data" / "demo", SynthConfig(n_videos=2, n_frames=80, n_labeled_per_video=40, seed=3))
    videos = [(f"mouse-{i:03d}", f"data/demo/videos/mouse-{i:03d}.mp4", i == 0) for i in range(2)]
    write_config(workdir, demo_config, videos, refine=("mouse-001",))
    return workdir
