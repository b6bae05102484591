"""posecore and DeepPoseKit on the same clip, alternating runs, and the median ratios of their speeds.

    PYTHONPATH=. .venv/bin/python benchmarks/side_by_side.py --peer-python ../dpk-venv/bin/python \
        --peer-script ../shared/peers/dpk_speed.py [--frames 480] [--pairs 2] [--compile never] \
        [--precision float32 bfloat16]

Cuts the first --frames frames of --video by stream copy, then runs, --pairs times, posecore
(`benchmarks/inference.py --models ...`: each model's forward-only and end-to-end video to
Parquet, once per --precision) and right after it the peer (`dpk_speed.py CLIP BATCH`, DeepPoseKit's `model.predict` on
its VideoReader), both at the priority this script runs at. Prints one row per run with the load
average at its start, then, per posecore model, the median over pairs of

- frames/s ratio: posecore end to end / the peer's frames/s (each pair's two runs);
- CPU ratio: the peer's CPU seconds per frame / posecore's end-to-end CPU seconds per frame
  (user + system; posecore's end-to-end child with its ffmpeg, model load included; the peer's
  whole process, TensorFlow's import and the model's build included), which a machine shared
  with other jobs changes less than frames/s.

Both ratios are above 1 where posecore is the faster.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VIDEO = ROOT.parent / "shared" / "data" / "dlc-openfield" / "videos" / "m3v1mp4.mp4"
POSECORE_ROW = re.compile(
    r"^(?P<model>\S+) repeat \d+: .*?forward (?P<forward>[\d.]+) fps .*?end-to-end (?P<fps>[\d.]+) fps,"
    r".*?CPU s/frame: forward [\d.]+, end-to-end (?P<cpu>[\d.]+)",
    re.MULTILINE,
)
PEER_ROW = re.compile(r"^DPK_PRED frames=(?P<frames>\d+) .*?fps=(?P<fps>[\d.]+)", re.MULTILINE)


def run_counted(command: list[str]) -> tuple[str, float]:
    """Run `command` from the repository root: its stdout, and the CPU seconds (user + system) its process tree took."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def posecore_run(clip: Path, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """benchmarks/inference.py on the clip, once per --precision: {"model precision": {fps, forward, cpu}}.

    The CPU figure is end to end, seconds per frame.
    """
    rows = {}
    for precision in args.precision:
        command = [sys.executable, str(ROOT / "benchmarks" / "inference.py"), "--video", str(clip)]
        command += ["--frames", str(args.frames), "--repeats", "1", "--long-model", "skip", "--models", *args.models]
        command += ["--batch-size", str(args.batch_size), "--compile", args.compile, "--precision", precision]
        stdout, _ = run_counted(command)
        found = {m["model"]: {k: float(m[k]) for k in ("fps", "forward", "cpu")} for m in POSECORE_ROW.finditer(stdout)}
        if missing := set(args.models) - set(found):
            raise SystemExit(f"benchmarks/inference.py printed no figures for {missing}:\n{stdout}")
        rows.update({f"{model} {precision}": row for model, row in found.items()})
    return rows


def peer_run(clip: Path, args: argparse.Namespace) -> dict[str, float]:
    """The peer's script on the clip: its frames/s and its whole process's CPU seconds per frame."""
    stdout, cpu = run_counted([str(args.peer_python), str(args.peer_script), str(clip), str(args.batch_size)])
    found = PEER_ROW.search(stdout)
    if found is None:
        raise SystemExit(f"{args.peer_script} printed no 'DPK_PRED frames=... fps=...' line:\n{stdout}")
    return {"fps": float(found["fps"]), "cpu": cpu / int(found["frames"])}


def main() -> None:
    """Cut the clip, alternate the runs, print the table and the median ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=VIDEO)
    parser.add_argument("--frames", type=int, default=480, help="the clip: the video's first frames")
    parser.add_argument("--pairs", type=int, default=2, help="posecore-then-peer pairs")
    parser.add_argument("--models", nargs="+", default=["deepposekit", "default"], help="inference.py's --models")
    parser.add_argument("--batch-size", type=int, default=8, help="both sides' batch size")
    parser.add_argument("--compile", choices=("auto", "always", "never"), default="auto", help="posecore's")
    parser.add_argument(
        "--precision",
        nargs="+",
        choices=("auto", "float32", "bfloat16"),
        default=["auto"],
        help="posecore's, each in turn within a pair (bfloat16: fast on CPUs with AMX)",
    )
    parser.add_argument("--peer-python", type=Path, required=True, help="the Python that has DeepPoseKit")
    parser.add_argument("--peer-script", type=Path, required=True, help="dpk_speed.py (prints DPK_PRED ...)")
    args = parser.parse_args()
    for path in (args.video, args.peer_python, args.peer_script):
        if not path.exists():
            raise SystemExit(f"{path} does not exist")

    from posecore.io.video import ffmpeg_executable

    clip = Path(tempfile.mkdtemp(prefix="side-by-side-")) / f"clip{args.frames}.mp4"
    command = [ffmpeg_executable(), "-loglevel", "error", "-i", str(args.video), "-c", "copy"]
    subprocess.run([*command, "-frames:v", str(args.frames), str(clip)], check=True)
    print(
        f"{args.frames} frames of {args.video.name}, batch {args.batch_size}, posecore compile {args.compile}, "
        f"precision {' then '.join(args.precision)}"
    )
    print("| pair | run | load average (1 min) at its start | end-to-end frames/s | CPU s per frame |")
    print("|---|---|---|---|---|")
    ratios: dict[str, tuple[list[float], list[float]]] = {}
    for pair in range(1, args.pairs + 1):
        load = os.getloadavg()[0]
        ours = posecore_run(clip, args)
        for model, row in ours.items():
            print(f"| {pair} | posecore {model} | {load:.2f} | {row['fps']:.2f} | {row['cpu']:.3f} |", flush=True)
        load = os.getloadavg()[0]
        peer = peer_run(clip, args)
        print(f"| {pair} | DeepPoseKit | {load:.2f} | {peer['fps']:.2f} | {peer['cpu']:.3f} |", flush=True)
        for model, row in ours.items():
            ratios.setdefault(model, ([], []))[0].append(row["fps"] / peer["fps"])
            ratios[model][1].append(peer["cpu"] / row["cpu"])
    for model, (fps, cpu) in ratios.items():
        print(
            f"{model}: median frames/s ratio {statistics.median(fps):.2f} ({', '.join(f'{r:.2f}' for r in fps)}); "
            f"median CPU ratio {statistics.median(cpu):.2f} ({', '.join(f'{r:.2f}' for r in cpu)})"
        )


if __name__ == "__main__":
    main()
