"""Pipeline capacity: the workflow's inference stage over an archive, against the machine's raw decode capacity.

    PYTHONPATH=. .venv/bin/python benchmarks/archive.py [--videos 20] [--seconds 60] [--content testsrc]
    PYTHONPATH=. .venv/bin/python benchmarks/archive.py --repo ../baseline   # another checkout's workflow
    PYTHONPATH=. python3 benchmarks/archive.py --architecture stacked_densenet   # the shipped model (a GPU)

Generates (once, kept in --out) --videos videos of 640x480, 30 fps, H.264 4:2:0 of --seconds
each: `testsrc` is ffmpeg's moving test pattern with light sensor noise (about 1 Mbit/s, cheap
to decode), `noisy` the same with heavy noise (about 8 Mbit/s, costly to decode). Then, in one
run, alternating --repeats times:

- raw decode capacity: every core decoding those videos to RGB with ffmpeg, one ffmpeg per core
  over a queue of the videos, each single-threaded and again with ffmpeg's own threads; the
  faster of the two is the capacity (frames/s);
- the workflow's inference stage (plan, infer, aggregate) over the archive, through the
  `snakemake` of --repo (default: this checkout) with its shipped config but for the model:
  `colour_readout` (posecore.models.readout: a forward that costs next to nothing), trained
  for one epoch on a small synthetic labeled set before the timed run, which also probes the
  videos, and decoded without the label priors (each map's highest peak). Printed: the stage
  from the start of its first job to its last trajectory file, and the whole `snakemake`
  command (its own start-up and DAG included), as frames/s and as a fraction of the capacity,
  and the CPU seconds of the process tree.

The SLURM plugin's `scontrol` call at start-up waits about 9 s on a machine with SLURM's
commands but no slurmctld: a stand-in answers it (as in benchmarks/dag.py).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from dag import stand_in_path

from posecore.io.video import ffmpeg_executable

REPO = Path(__file__).resolve().parents[1]
CONTENT = {
    "testsrc": "testsrc2=size=640x480:rate=30,noise=alls=3:allf=t",
    "noisy": "testsrc2=size=640x480:rate=30,noise=alls=12:allf=t",
}


def make_videos(folder: Path, n: int, seconds: int, content: str) -> list[Path]:
    """The archive's videos, generated once (kept when already there)."""
    folder.mkdir(parents=True, exist_ok=True)
    videos = []
    for i in range(n):
        path = folder / f"{content}-{seconds}s-{i:03d}.mp4"
        if not path.exists():
            tmp = path.with_name(f".{path.name}")
            source = f"{CONTENT[content]},hue=h={i * 17}"  # each video a little different
            command = [ffmpeg_executable(), "-loglevel", "error", "-y", "-f", "lavfi", "-i", source, "-t", str(seconds)]
            command += ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", str(tmp)]
            subprocess.run(command, check=True)
            tmp.rename(path)
        videos.append(path)
    return videos


def decode_capacity(videos: list[Path], threads: int | None) -> float:
    """Frames/s of one ffmpeg per core decoding every video to RGB (into /dev/null), side by side."""
    cores = os.cpu_count() or 1

    def decode(path: Path) -> None:
        command = [ffmpeg_executable(), "-loglevel", "error", "-nostdin"]
        command += ["-threads", str(threads)] if threads else []
        command += ["-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-y", "/dev/null"]
        subprocess.run(command, check=True)

    frames = sum(n_frames(v) for v in videos)
    started = time.perf_counter()
    with ThreadPoolExecutor(cores) as pool:
        list(pool.map(decode, videos))
    return frames / (time.perf_counter() - started)


def n_frames(path: Path) -> int:
    """Frames of a generated video (its duration at 30 fps, from the name)."""
    return int(path.name.split("-")[1].rstrip("s")) * 30


def make_project(project: Path, repo: Path, videos: list[Path], architecture: str) -> list[str]:
    """A project of the archive with a trained colour readout and probed videos; the stage's targets."""
    if not (project / "labels" / "synth.json").exists():
        shutil.rmtree(project / "labels", ignore_errors=True)
        command = [sys.executable, "-m", "posecore", "synth", str(project / "labels")]
        subprocess.run([*command, "--videos", "2", "--frames", "60", "--labeled", "20"], check=True, cwd=REPO)
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    config["dataset"]["labels"] = ["labels/labeled-data/*/CollectedData_synth.csv"]
    if architecture != "colour_readout":  # the shipped model, e.g. on a GPU
        config["model"] = {**config["model"], "name": "readout", "architecture": architecture}
    else:
        config["model"] = {"name": "readout", "architecture": architecture, "hyperparameters": {}}
    config["train"] = {**config["train"], "max_epochs": 1}
    # The label priors would move peaks about the readout's meaningless maps, at a cost of their
    # own (benchmarks/decoding.py measures decoding); here every map's highest peak.
    config["inference"] = {**config["inference"], "priors": False}
    (project / "config").mkdir(parents=True, exist_ok=True)
    (project / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    rows = ["video\tpath\tlabeling\trefine", *(f"{v.stem}\t{v}\tfalse\tfalse" for v in videos)]
    (project / "config" / "videos.tsv").write_text("\n".join(rows) + "\n")
    probes = [f"results/videos/{v.stem}.json" for v in videos]
    snakemake(project, repo, ["results/models/readout/model.pt", *probes])
    return [f"results/trajectories/readout/video={v.stem}/part-0.parquet" for v in videos]


def snakemake(project: Path, repo: Path, targets: list[str]) -> None:
    """Run `repo`'s workflow in `project` to `targets`, untimed."""
    result = subprocess.run(snakemake_command(project, repo, targets), capture_output=True, text=True, env=ENV)
    if result.returncode != 0:
        sys.exit(f"snakemake failed:\n{result.stderr[-4000:]}")


def snakemake_command(project: Path, repo: Path, targets: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "snakemake", "--snakefile", str(repo / "workflow" / "Snakefile"),
        "--directory", str(project), "--workflow-profile", str(repo / "profiles" / "default"),
        "--cores", str(os.cpu_count() or 1), "--quiet", "all", "--", *targets,
    ]  # fmt: skip


def stage(project: Path, repo: Path, targets: list[str]) -> dict[str, float]:
    """Run the inference stage from scratch (probes and model kept): its span, the command's wall and CPU."""
    for folder in ("results/shards", "results/predictions", "results/trajectories", "logs", "benchmarks"):
        shutil.rmtree(project / folder, ignore_errors=True)
    shutil.rmtree(project / ".snakemake" / "incomplete", ignore_errors=True)
    first_log = {"t": None}
    stop = threading.Event()
    plan_logs = [project / "logs" / "plan_inference.log", project / "logs" / "plan_shards"]

    def watch() -> None:  # the first stage job's log appears as its script starts
        while not stop.is_set() and first_log["t"] is None:
            if any(p.exists() for p in plan_logs):
                first_log["t"] = time.time()
            time.sleep(0.005)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    result = subprocess.run(snakemake_command(project, repo, targets), capture_output=True, text=True, env=ENV)
    ended = time.time()
    stop.set()
    watcher.join()
    if result.returncode != 0:
        sys.exit(f"snakemake failed:\n{result.stderr[-4000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    last = max((project / t).stat().st_mtime for t in targets)
    return {
        "stage_s": last - (first_log["t"] or started),
        "command_s": ended - started,
        "cpu_s": after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime,
    }


ENV: dict[str, str] = {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=60, help="length of each video")
    parser.add_argument("--content", choices=sorted(CONTENT), default="testsrc")
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout whose workflow runs the stage")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "archive")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--architecture",
        default="colour_readout",
        help="the model (default: colour_readout, next to nothing); another one takes the config's hyperparameters",
    )
    args = parser.parse_args()
    repo = args.repo.resolve()
    ENV.update(os.environ, PYTHONPATH=str(repo), PATH=stand_in_path(args.out / f"bin-{os.getpid()}"))
    videos = make_videos(args.out / "videos", args.videos, args.seconds, args.content)
    frames = sum(n_frames(v) for v in videos)
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    project = args.out / f"project-{args.content}-{args.architecture}-{repo.name}"
    targets = make_project(project, repo, videos, args.architecture)
    print(f"{len(videos)} videos of {args.seconds} s, 640x480 30 fps 4:2:0 ({args.content}), {frames} frames")
    print(f"workflow of {repo} at {commit.stdout.strip()}, {os.cpu_count()} cores")
    rows = []
    for repeat in range(args.repeats):
        single = decode_capacity(videos, threads=1)
        auto = decode_capacity(videos, threads=None)
        run = stage(project, repo, targets)
        capacity = max(single, auto)
        rows.append((capacity, frames / run["stage_s"], frames / run["command_s"]))
        print(
            f"repeat {repeat}: decode capacity {single:.0f} frames/s single-threaded ffmpegs, {auto:.0f} with "
            f"ffmpeg's threads; stage {run['stage_s']:.1f} s = {frames / run['stage_s']:.0f} frames/s "
            f"({frames / run['stage_s'] / capacity:.2f} of capacity); snakemake command {run['command_s']:.1f} s = "
            f"{frames / run['command_s']:.0f} frames/s ({frames / run['command_s'] / capacity:.2f}); "
            f"CPU {run['cpu_s']:.1f} s ({run['cpu_s'] / frames * 1000:.2f} ms a frame)",
            flush=True,
        )
    capacity = statistics.median(r[0] for r in rows)
    print(
        f"median: capacity {capacity:.0f} frames/s; stage {statistics.median(r[1] for r in rows):.0f} frames/s "
        f"= {statistics.median(r[1] / r[0] for r in rows):.2f} of capacity; whole command "
        f"{statistics.median(r[2] / r[0] for r in rows):.2f} of capacity"
    )


if __name__ == "__main__":
    main()
