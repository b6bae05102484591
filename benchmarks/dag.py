"""Scale of the SLURM profile: DAG build time and SLURM submissions for a large archive.

    python benchmarks/dag.py                          # 1,000 one-hour videos at 30 fps, 640x480
    python benchmarks/dag.py --videos 200 --frames 9000
    python benchmarks/dag.py --profile path/to/your/profile

Generates a project in a temporary folder: a video sheet of --videos entries (empty
placeholder files: a dry run opens no video), each video already probed (--frames frames of
640x480, a keyframe every 250) and the inference plan written (as the plan_inference
checkpoint writes it, `posecore.infer.archive.plan_archive`, with the config's
inference.frames_per_shard and frames_per_job), and each batch's prepare record written, so
that the DAG holds every job. Then runs `snakemake --dry-run` through the profile, as
`snakemake --workflow-profile profiles/slurm` would start on a cluster, and prints its wall
time and CPU time (user + sys of the Snakemake process, steadier than wall on a shared
machine), the jobs per rule and the SLURM submissions: one per group job, plus one per job
outside any group (the `all` rule and the local rules run inside Snakemake and are not
submitted).

The SLURM plugin runs `scontrol show config` as Snakemake starts (to read MinJobAge).
On a cluster slurmctld answers in milliseconds; on a machine with SLURM's commands but no
slurmctld running, scontrol waits about 9 s for it before giving up, which is no part of the
workflow's cost. So the dry run finds a stand-in `scontrol` first on its PATH, which prints
what `scontrol show config` prints for MinJobAge (SLURM's default, 300 s) and nothing else;
`--real-scontrol` uses the scontrol on PATH instead.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from posecore.infer.archive import plan_archive
from posecore.io.video import VideoInfo

REPO = Path(__file__).resolve().parents[1]
# A dry run prints each job as "[time]\nrule NAME:" at the left margin, and each group job
# as "[time] Group job NAME (...)" followed by its member jobs, indented.
GROUP_JOB = re.compile(r"^\[[^\]]+\] Group job (\S+) ")
TOP_LEVEL_JOB = re.compile(r"^(?:rule|checkpoint) (\w+):$")
MEMBER_JOB = re.compile(r"^\s+(?:rule|checkpoint) (\w+):$")
NOT_SUBMITTED = {"all", "plan_inference", "aggregate"}  # the workflow's localrules, and all
# Stands in for `scontrol show config` of a cluster whose slurmctld answers at once.
STAND_IN_SCONTROL = """#!/bin/sh
if [ "$1 $2" = "show config" ]; then
    echo "MinJobAge               = 300 sec"
else
    echo "scontrol stand-in of benchmarks/dag.py: only 'show config' is answered" >&2
    exit 1
fi
"""


def make_project(workdir: Path, n_videos: int, n_frames: int, videos_per_job: int | None) -> None:
    """Write the config, the sheet, placeholder videos and labels, probes, the plan and prepare records."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    if videos_per_job is not None:
        config["inference"]["videos_per_job"] = videos_per_job
    per_job = config["inference"]["videos_per_job"]
    config["dataset"]["labels"] = ["data/labels/CollectedData_bench.csv"]
    (workdir / "config").mkdir(parents=True)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (workdir / "data" / "videos").mkdir(parents=True)
    (workdir / "data" / "labels").mkdir(parents=True)
    (workdir / "data" / "labels" / "CollectedData_bench.csv").touch()
    names = [f"video-{i:05d}" for i in range(n_videos)]
    rows = ["video\tpath\tlabeling"]
    for i, name in enumerate(names):
        (workdir / "data" / "videos" / f"{name}.mp4").touch()
        rows.append(f"{name}\tdata/videos/{name}.mp4\t{str(i == 0).lower()}")
    (workdir / "config" / "videos.tsv").write_text("\n".join(rows) + "\n")
    # Probes and the plan are written after the videos, so they are up to date.
    time.sleep(0.01)
    probes = {}
    for name in names:
        info = VideoInfo(
            f"data/videos/{name}.mp4", n_frames, 30.0, 640, 480, "h264", "yuv420p", n_frames / 30, False,
            tuple(range(0, n_frames, 250)), None,
        )  # fmt: skip
        probes[name] = workdir / "results" / "videos" / f"{name}.json"
        info.write_json(probes[name])
    inference = config["inference"]
    plan_archive(
        probes, inference["frames_per_shard"], inference["frames_per_job"], workdir / "results/shards/plan.tsv"
    )
    (workdir / "results" / "jobs").mkdir()
    for start in range(0, n_videos, per_job):  # as the workflow's prepare_batch writes them
        batch = names[start : start + per_job]
        (workdir / "results" / "jobs" / f"prepare-{start // per_job:05d}.txt").write_text("\n".join(batch) + "\n")


def stand_in_path(folder: Path) -> str:
    """A PATH whose first folder holds the stand-in scontrol (written into `folder`)."""
    folder.mkdir(parents=True)
    scontrol = folder / "scontrol"
    scontrol.write_text(STAND_IN_SCONTROL)
    scontrol.chmod(0o755)
    return f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"


def count_submissions(dry_run_output: str) -> tuple[collections.Counter, collections.Counter]:
    """Jobs per rule, and SLURM submissions per group or ungrouped rule, from a dry run's output."""
    jobs, submissions = collections.Counter(), collections.Counter()
    for line in dry_run_output.splitlines():
        if match := GROUP_JOB.match(line):
            submissions[f"group {match.group(1)}"] += 1
        elif match := TOP_LEVEL_JOB.match(line):
            jobs[match.group(1)] += 1
            if match.group(1) not in NOT_SUBMITTED:
                submissions[match.group(1)] += 1
        elif match := MEMBER_JOB.match(line):
            jobs[match.group(1)] += 1
    return jobs, submissions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=1000, help="videos in the sheet")
    parser.add_argument("--frames", type=int, default=108_000, help="frames per video (640x480)")
    parser.add_argument("--videos-per-job", type=int, help="inference.videos_per_job (default: the config's)")
    parser.add_argument("--profile", type=Path, default=REPO / "profiles" / "slurm", help="workflow profile")
    parser.add_argument(
        "--real-scontrol", action="store_true", help="use the scontrol on PATH, not the stand-in (on a cluster)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="posecore-dag-") as folder:
        workdir = Path(folder) / "project"
        make_project(workdir, args.videos, args.frames, args.videos_per_job)
        environment = dict(os.environ)
        if not args.real_scontrol:
            environment["PATH"] = stand_in_path(Path(folder) / "bin")
        command = [
            sys.executable, "-m", "snakemake", "--dry-run",
            "--snakefile", str(REPO / "workflow" / "Snakefile"),
            "--directory", str(workdir),
            "--workflow-profile", str(args.profile),
        ]  # fmt: skip
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, env=environment)
        seconds = time.perf_counter() - started
        cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    user, system = cpu.ru_utime - cpu_before.ru_utime, cpu.ru_stime - cpu_before.ru_stime
    if result.returncode != 0:
        sys.exit(f"snakemake --dry-run failed:\n{result.stderr[-4000:]}")
    jobs, submissions = count_submissions(result.stdout + result.stderr)
    print(f"{args.videos} videos of {args.frames} frames of 640x480, profile {args.profile}")
    print(
        f"dry run (DAG build): {seconds:.1f} s wall, {user + system:.1f} s CPU ({user:.1f} s user + {system:.1f} s sys)"
    )
    print(f"jobs: {sum(jobs.values())}  " + "  ".join(f"{rule}={n}" for rule, n in sorted(jobs.items())))
    per_kind = "  ".join(f"{kind}={n}" for kind, n in sorted(submissions.items()))
    print(f"SLURM submissions: {sum(submissions.values())}  {per_kind}")


if __name__ == "__main__":
    main()
