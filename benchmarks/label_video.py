"""Labeled videos: speed against the model's CPU inference on the same video, memory on a long video.

    PYTHONPATH=. .venv/bin/python benchmarks/label_video.py [--frames N] [--repeats R] [--long-factor F]

Speed, on frames [0, N) of the real video (default: all of it), each run in a child process of
its own, `--repeats` times:

- end-to-end CPU inference of DeepPoseKit's default Stacked DenseNet (random weights), video to
  Parquet: the child of benchmarks/inference.py (`infer_shard`: decode, model, peaks, write);
- `posecore.labeled_video.label_video` of those trajectories over the same frames (decode, draw,
  H.264 encode), with the default style (no trail) and with a 10-frame trail;

and for each its frames/s and CPU seconds per frame (the process and its ffmpeg children,
which a shared machine changes less than frames/s), and labeling / inference frames/s (the
goal: at least 1, labeling keeps up with the model).

Memory: label_video over the whole video and over it concatenated `--long-factor` times
(stream copy), each with trajectories made up for every frame (a random walk of 4 keypoints;
drawing costs the same whatever the points), in child processes: the peak RSS of the process
and of its largest ffmpeg child (decoder or encoder, sampled every 0.2 s), and the ratio
long / short (the goal: flat, at most 1.1).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from inference import DPK_DEFAULTS, KEYPOINTS, VIDEO, concatenate, end_to_end, export_model

from posecore.hugepages import restart_with_huge_pages

ROOT = Path(__file__).resolve().parents[1]
SKELETON = (("snout", "leftear"), ("snout", "rightear"), ("leftear", "tailbase"), ("rightear", "tailbase"))


def labeled(video: Path, trajectories: Path, out: Path, n: int, trail: int) -> dict:
    """Run label_video on frames [0, n) in a child process; its frames/s, CPU time and peak RSS."""
    command = [sys.executable, __file__, "--worker", str(video), str(trajectories), str(out), str(n), str(trail)]
    done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def worker(args: argparse.Namespace) -> None:
    """The child of `labeled`: probe, check, draw and encode, timed until the MP4 is renamed into place."""
    from posecore.io.video import probe
    from posecore.labeled_video import LabelStyle, label_video

    video, trajectories, out = (Path(a) for a in args.worker[:3])
    n, trail = int(args.worker[3]), int(args.worker[4])
    ffmpeg_peaks: dict[str, float] = {}
    done = threading.Event()
    watcher = threading.Thread(target=watch_children, args=(done, ffmpeg_peaks), daemon=True)
    watcher.start()
    start = time.perf_counter()
    info = probe(video)
    label_video(video, trajectories, out, style=LabelStyle(trail=trail), skeleton=SKELETON, stop=n, info=info,
                progress=False)  # fmt: skip
    wall = time.perf_counter() - start
    done.set()
    watcher.join()
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    result = {"frames": n, "wall_s": wall, "fps": n / wall, "cpu_s": cpu, "peak_rss_mb": own.ru_maxrss / 1024}
    print(json.dumps({**result, "ffmpeg_peak_rss_mb": max(ffmpeg_peaks.values(), default=float("nan"))}))


def watch_children(done: threading.Event, peaks: dict[str, float]) -> None:
    """Until `done`, every 0.2 s: the peak RSS (VmHWM, MB) of each ffmpeg child of this process, by id.

    getrusage's RUSAGE_CHILDREN cannot tell: a child forked from this process counts this
    process's memory until it runs ffmpeg.
    """
    me = str(os.getpid())
    while not done.wait(0.2):
        for status_file in Path("/proc").glob("[0-9]*/status"):
            try:
                status = status_file.read_text()
            except OSError:  # it ended meanwhile
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            if fields.get("PPid", "").strip() == me and fields.get("Name", "").strip() == "ffmpeg":
                peak = float(fields.get("VmHWM", "0 kB").split()[0]) / 1024
                pid = status_file.parent.name
                peaks[pid] = max(peaks.get(pid, 0.0), peak)


def made_up_trajectories(video: Path, out: Path) -> Path:
    """A trajectory file for every frame of `video`: 4 keypoints on a seeded random walk inside the frame."""
    from posecore.io.trajectories import SCHEMA, Provenance, keypoint_table
    from posecore.io.video import probe

    info = probe(video)
    rng = np.random.default_rng(0)
    position = np.array([info.width / 2, info.height / 2])
    provenance = Provenance.for_video("0" * 64, {"benchmark": "label_video"}, video, info=info)
    with pq.ParquetWriter(out, SCHEMA.with_metadata(provenance.to_metadata()), compression="zstd") as writer:
        for first in range(0, info.n_frames, 10_000):
            frames = np.arange(first, min(first + 10_000, info.n_frames))
            steps = rng.normal(0, 2, (len(frames), 2))
            walk = np.clip(position + np.cumsum(steps, axis=0), 20, [info.width - 21, info.height - 21])  # (B, 2)
            position = walk[-1]
            offsets = np.array([[0, -15], [-8, -8], [8, -8], [0, 15]])  # (K, 2) around the walk
            peaks = np.concatenate([walk[:, None] + offsets, rng.uniform(0, 1, (len(frames), 4, 1))], axis=-1)
            writer.write_table(keypoint_table(frames, frames / info.fps, peaks, KEYPOINTS))
    return out


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=VIDEO)
    parser.add_argument("--frames", type=int, default=None, help="frames for the speed ratio (default: all)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8, help="inference batch size")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for the model")
    parser.add_argument("--long-factor", type=int, default=10, help="0 skips the memory measurement")
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    restart_with_huge_pages(sys.argv)  # as posecore's command line and workflow run
    if args.worker:
        worker(args)
        return

    from posecore.io.video import probe

    info = probe(args.video)
    n = min(args.frames or info.n_frames, info.n_frames)
    work = Path(tempfile.mkdtemp(prefix="posecore-bench-label-"))
    model = export_model(work / "model.pt", DPK_DEFAULTS, info.height, info.width)
    print(f"video {args.video.name}: {info.width}x{info.height}, {info.n_frames} frames; timing frames [0, {n})")
    print(f"inference: stacked_densenet {DPK_DEFAULTS}, batch {args.batch_size}, {args.threads} torch threads")
    ratios, plain_cpu, trail_cpu, infer_cpu = [], [], [], []
    for repeat in range(args.repeats):
        inferred = end_to_end(args.video, model, n, args.batch_size, args.threads, work / "trajectories.parquet")
        plain = labeled(args.video, work / "trajectories.parquet", work / "labeled.mp4", n, 0)
        trail = labeled(args.video, work / "trajectories.parquet", work / "trail.mp4", n, 10)
        ratios.append(plain["fps"] / inferred["fps"])
        infer_cpu.append(inferred["cpu_s"] / n)
        plain_cpu.append(plain["cpu_s"] / n)
        trail_cpu.append(trail["cpu_s"] / n)
        print(
            f"repeat {repeat}: inference {inferred['fps']:.2f} fps ({infer_cpu[-1]:.3f} CPU s/frame), "
            f"label-video {plain['fps']:.1f} fps ({plain_cpu[-1]:.4f} CPU s/frame), "
            f"with a 10-frame trail {trail['fps']:.1f} fps ({trail_cpu[-1]:.4f}); "
            f"label-video / inference {ratios[-1]:.1f}",
            flush=True,
        )
    print(
        f"median: label-video / inference {statistics.median(ratios):.1f} (goal: at least 1); CPU s/frame: "
        f"inference {statistics.median(infer_cpu):.3f}, label-video {statistics.median(plain_cpu):.4f}, "
        f"with trail {statistics.median(trail_cpu):.4f}"
    )
    if args.long_factor <= 0:
        return
    long_video = concatenate(args.video, args.long_factor, work / f"long{args.long_factor}.mp4")
    runs = []
    for video in (args.video, long_video):
        frames = probe(video).n_frames
        trajectories = made_up_trajectories(video, work / f"{video.stem}-made-up.parquet")
        runs.append(labeled(video, trajectories, work / f"{video.stem}-labeled.mp4", frames, 10))
    short, long = runs
    ratio = long["peak_rss_mb"] / short["peak_rss_mb"]
    print(
        f"peak RSS of label-video (10-frame trail): {short['peak_rss_mb']:.0f} MB on {short['frames']} frames, "
        f"{long['peak_rss_mb']:.0f} MB on {long['frames']} frames, ratio {ratio:.3f}"
        f" (goal: at most 1.1); its ffmpeg (decoder or encoder, the larger): {short['ffmpeg_peak_rss_mb']:.0f} "
        f"and {long['ffmpeg_peak_rss_mb']:.0f} MB; {short['fps']:.1f} and {long['fps']:.1f} frames/s"
    )


if __name__ == "__main__":
    main()
