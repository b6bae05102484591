"""A tiny project for running the whole workflow: .test/config over the synthetic archive it names."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from posecore.schema import check_config, load_schema

REPO = Path(__file__).resolve().parents[2]
SNAKEFILE = REPO / "workflow" / "Snakefile"
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
TEST_CONFIG = REPO / ".test" / "config"


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


def archive_command(out: Path) -> list[str]:
    """The arguments of `posecore synth` that make the archive .test/config names, written to `out`.

    They are the command given in .test/config/config.yaml's header, so that the tests run what
    it tells a reader to run.
    """
    header = (TEST_CONFIG / "config.yaml").read_text().splitlines()
    command = next(line.split()[2:] for line in header if line.startswith("#   posecore synth "))
    assert command[1] == ".test/data/demo", "the header's command writes the archive that .test/config names"
    return [command[0], str(out), *command[2:]]


@pytest.fixture(scope="session")
def demo_config() -> dict:
    """The workflow's test config (.test/config/config.yaml), its defaults filled in as the workflow fills them."""
    path = TEST_CONFIG / "config.yaml"
    return check_config(yaml.safe_load(path.read_text()), load_schema(SCHEMA), path)


@pytest.fixture(scope="session")
def tiny_project(tmp_path_factory) -> Path:
    """A copy of .test/: its config and video sheet over the synthetic archive they name (2 videos of 80 frames)."""
    from posecore.cli import main

    workdir = tmp_path_factory.mktemp("project")
    assert main(archive_command(workdir / "data" / "demo")) == 0
    shutil.copytree(TEST_CONFIG, workdir / "config")
    return workdir
