"""Inference speed and memory on a real video, with DeepPoseKit's Stacked DenseNet and posecore's default.

    PYTHONPATH=. .venv/bin/python benchmarks/inference.py [--models deepposekit default] [--frames N]
        [--repeats R] [--long-model tiny]
    PYTHONPATH=. .venv/bin/python benchmarks/inference.py --random-frames 480x640 [--batch-size B]

Prints, for frames [0, N) of the video (default: all of it):

- decode-only frames/s (`posecore.io.video.read_frames`, RGB, batches),
- forward-only frames/s of the model on the same frames, already decoded and prepared,
- end-to-end frames/s, video to Parquet (`posecore.infer.infer_video`: decoders, one per
  thread, in background threads, model, peaks, streamed atomic writes), run in a child process,
- each repeat's end-to-end / forward-only ratio, and their medians;
- CPU seconds per frame of the end-to-end run (the process and its ffmpeg), which a machine
  shared with other jobs changes less than frames/s: compare it with the peer's user + sys
  time per frame (`time python ../shared/peers/dpk_speed.py ...`);

then the peak RSS of end-to-end runs (each in its own child process) on the whole video and on
the video concatenated `--long-factor` times (stream copy, so the same frames), and their
ratio. `--long-model tiny` runs these two on a small model of the same family, for machines
where the full model would take hours over the long video (the pipeline's memory, not the
model's, is what grows with length); the output says which model ran.

`--precision` is the inference job's ("auto": bfloat16 autocast on a GPU, float32 on the CPU;
"float32"; "bfloat16", fast on CPUs with AMX matrix units), for the forward-only and end-to-end runs.

`--compile` is the inference job's ("auto": on a GPU only; "always"; "never"). With compilation, the
first forward-only batch's time is the compilation; the end-to-end child then finds the compiled
kernels in inductor's on-disk cache, as the second and later jobs of an archive do, and its
frames/s include loading them.

`--random-frames HxW` needs no video and no ffmpeg: it times `Predictor.predict` alone (upload,
the forward under bfloat16 autocast on a GPU, peaks, download) on random frames, --repeats
times over --frames frames (default 64 batches), for a GPU node's side of inference.

The models (`--models`, each timed in turn; random weights, for speed only; 4 keypoints, maps at
1/4 of the full-size input; saved and loaded as exported model files like any other):

- `deepposekit`: DeepPoseKit's Stacked DenseNet layer for layer (`stacked_densenet`), as
  `../shared/peers/dpk_speed.py` builds it for the peer's side: 2 stacks, growth rate 32, and
  the posture-graph maps of its 4-keypoint skeleton (10 output maps): 1,446,357 parameters,
  DeepPoseKit's own count;
- `default`: the model config/config.yaml trains (`densenet_lite`, 2 stacks, growth rate 16);
- `lite-32`: `densenet_lite` at growth rate 32, the model earlier versions of this benchmark
  called "DeepPoseKit's default" (357,868 parameters, a quarter of DeepPoseKit's).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from posecore.hugepages import restart_with_huge_pages

ROOT = Path(__file__).resolve().parents[1]
VIDEO = ROOT.parent / "shared" / "data" / "dlc-openfield" / "videos" / "m3v1mp4.mp4"
KEYPOINTS = ("snout", "leftear", "rightear", "tailbase")
# name: (architecture, hyperparameters, what it is)
MODELS = {
    "deepposekit": (
        "stacked_densenet",
        {"n_stacks": 2, "growth_rate": 32, "n_graph_maps": 6},
        "DeepPoseKit's Stacked DenseNet, layer for layer (2 stacks, growth 32, posture-graph maps as dpk_speed.py)",
    ),
    "default": ("densenet_lite", {"n_stacks": 2, "growth_rate": 16}, "posecore's default (config/config.yaml)"),
    "lite-32": ("densenet_lite", {"n_stacks": 2, "growth_rate": 32}, "posecore's lighter Stacked DenseNet, growth 32"),
}
TINY = ("densenet_lite", {"n_stacks": 1, "growth_rate": 4, "n_transitions": 1}, "a tiny densenet_lite")


def export_model(path: Path, model: tuple[str, dict, str], height: int, width: int) -> Path:
    """Save a randomly initialised model (an entry of MODELS) as an exported model file."""
    from posecore.models import ModelMeta, build_model, save_model

    architecture, hyperparameters, _ = model
    torch.manual_seed(0)
    network = build_model(architecture, len(KEYPOINTS), 3, **hyperparameters).eval()
    meta = ModelMeta(architecture, hyperparameters, KEYPOINTS, (height, width), 3, (128.0,) * 3, (64.0,) * 3, 4)
    save_model(path, network, meta)
    return path


def decode_fps(video: Path, info: object, n: int, batch_size: int) -> tuple[float, np.ndarray]:
    """Frames/s of decoding frames [0, n) to RGB; also returns up to 64 of them (uint8 (F, H, W, 3))."""
    from posecore.io.video import read_frames

    kept = []
    start = time.perf_counter()
    for batch in read_frames(video, 0, n, info=info, batch_size=batch_size):
        if sum(len(k) for k in kept) < 64:
            kept.append(batch.images)
    return n / (time.perf_counter() - start), np.concatenate(kept)[:64]


def forward_fps(predictor: object, frames: np.ndarray, n: int) -> tuple[float, float, float]:
    """Frames/s and CPU s/frame of the model's forward alone on `n` frames (cycling through `frames`).

    The input is prepared once, outside the timing. Also returns the seconds of the first
    forward, untimed otherwise: with compilation, that is what compiling took.
    """
    from posecore.predict import prepare_images

    batch_size = predictor.batch_size
    x = prepare_images(
        frames[:batch_size],
        predictor.meta.mean,
        predictor.meta.std,
        predictor.multiple,
        predictor.device,
        predictor.memory_format,
    )
    with torch.inference_mode(), predictor.autocast():  # as `Predictor.maps` runs the forward
        start = time.perf_counter()
        predictor.forward(x)  # warm-up (and the compilation, when the predictor compiles)
        first = time.perf_counter() - start
        start, cpu = time.perf_counter(), time.process_time()
        done = 0
        while done < n:
            predictor.forward(x)
            done += batch_size
    return done / (time.perf_counter() - start), (time.process_time() - cpu) / done, first


def predict_fps(predictor: object, frames: np.ndarray, n: int) -> tuple[float, float]:
    """Frames/s of `predictor.predict` on `n` frames (cycling through `frames`), and its first call's seconds.

    `predict` is inference's whole work after decoding: upload, normalisation, the forward (under
    bfloat16 autocast on a GPU), peaks and the copy back. The first call (the compilation, when
    the predictor compiles) is left out of the frames/s.
    """
    batch = frames[: predictor.batch_size]
    start = time.perf_counter()
    predictor.predict(batch)
    first = time.perf_counter() - start
    start, done = time.perf_counter(), 0
    while done < n:
        predictor.predict(batch)
        done += len(batch)
    return done / (time.perf_counter() - start), first


def random_frames_only(args: argparse.Namespace) -> None:
    """--random-frames: time `predict` alone on random frames, with no video and no ffmpeg (a GPU node's side)."""
    from posecore.models import load_model
    from posecore.predict import Predictor, resolve_device

    height, width = (int(v) for v in args.random_frames.lower().split("x"))
    work = Path(tempfile.mkdtemp(prefix="posecore-bench-"))
    frames = np.random.default_rng(0).integers(0, 256, (args.batch_size, height, width, 3), dtype=np.uint8)
    n = args.frames or 64 * args.batch_size
    for name in args.models:
        model_path = export_model(work / f"{name}.pt", MODELS[name], height, width)
        predictor = Predictor(
            load_model(model_path),
            resolve_device("auto"),
            batch_size=args.batch_size,
            compile=args.compile,
            precision=args.precision,
        )
        device = torch.cuda.get_device_name() if predictor.device.type == "cuda" else "CPU"
        print(f"model {name}: {MODELS[name][2]}", flush=True)
        for repeat in range(args.repeats):
            fps, first = predict_fps(predictor, frames, n)
            print(
                f"{name}: predict on {device}: {width}x{height}, batch {args.batch_size}, {predictor.dtype}, "
                f"compiled {predictor.compiled}: {fps:.1f} frames/s over {n} frames (repeat {repeat}; "
                f"first batch {first:.1f} s)",
                flush=True,
            )


def end_to_end(
    video: Path,
    model: Path,
    n: int | None,
    batch_size: int,
    threads: int,
    out: Path,
    compile: str = "auto",
    precision: str = "auto",
) -> dict:
    """Run `infer_video` on frames [0, n) (None: all) in a child process; its frames/s and peak RSS."""
    command = [sys.executable, __file__, "--worker", str(video), str(model), str(out), str(n or 0)]
    command += ["--batch-size", str(batch_size), "--threads", str(threads), "--compile", compile]
    command += ["--precision", precision]
    done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def worker(args: argparse.Namespace) -> None:
    """The child process of `end_to_end`: one video, timed from model load to renamed Parquet file."""
    from posecore.infer import infer_video, set_threads
    from posecore.io.video import probe
    from posecore.models import load_model

    set_threads(args.threads)
    video, model, out, n = Path(args.worker[0]), Path(args.worker[1]), Path(args.worker[2]), int(args.worker[3])
    info = probe(video)
    n = n or info.n_frames
    start = time.perf_counter()
    loaded = load_model(model)
    rows = infer_video(
        video, info, loaded, out, stop=n, decoders=args.threads, threads_per_decoder=1,
        batch_size=args.batch_size, compile=args.compile, precision=args.precision, progress=False,
    )  # fmt: skip
    wall = time.perf_counter() - start
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime  # ffmpeg included
    rss_mb = own.ru_maxrss / 1024
    print(json.dumps({"frames": n, "rows": rows, "wall_s": wall, "fps": n / wall, "cpu_s": cpu, "peak_rss_mb": rss_mb}))


def concatenate(video: Path, times: int, out: Path) -> Path:
    """The video `times` over, one after the other, by stream copy (ffmpeg's concat demuxer)."""
    from posecore.io.video import ffmpeg_executable

    listing = out.with_suffix(".txt")
    listing.write_text(f"file '{video.resolve()}'\n" * times)
    command = [ffmpeg_executable(), "-loglevel", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing)]
    subprocess.run([*command, "-c", "copy", str(out)], check=True)
    return out


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=VIDEO)
    parser.add_argument("--frames", type=int, default=None, help="frames for the speed ratios (default: all)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="torch threads for the model")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--long-factor", type=int, default=10)
    parser.add_argument("--long-model", choices=("same", "tiny", "skip"), default="same")
    parser.add_argument(
        "--models",
        nargs="+",
        choices=tuple(MODELS),
        default=["deepposekit", "default"],
        help="the models to time, in turn (the memory runs use the first)",
    )
    parser.add_argument(
        "--compile",
        choices=("auto", "always", "never"),
        default="auto",
        help="torch.compile the model, as the inference job's compile (auto: on a GPU only)",
    )
    parser.add_argument(
        "--precision",
        choices=("auto", "float32", "bfloat16"),
        default="auto",
        help="the forward's numbers, as the inference job's precision (auto: bfloat16 on a GPU, float32 on the CPU)",
    )
    parser.add_argument(
        "--random-frames",
        metavar="HxW",
        help="no video: time predict alone (model and peaks) on random frames of this size, e.g. 480x640",
    )
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    restart_with_huge_pages(sys.argv)  # as posecore's command line and workflow run models
    if args.worker:
        worker(args)
        return
    if args.random_frames:
        random_frames_only(args)
        return

    from posecore.hugepages import reuse_large_buffers
    from posecore.infer import set_threads
    from posecore.io.video import probe
    from posecore.models import load_model
    from posecore.predict import Predictor

    set_threads(args.threads)
    reuse_large_buffers()  # forward-only under the allocator settings end-to-end inference runs with
    info = probe(args.video)
    n = min(args.frames or info.n_frames, info.n_frames)
    work = Path(tempfile.mkdtemp(prefix="posecore-bench-"))
    print(f"video {args.video.name}: {info.width}x{info.height}, {info.n_frames} frames; timing frames [0, {n})")
    print(
        f"batch {args.batch_size}, {args.threads} torch threads; torch {torch.__version__}; compile {args.compile}; "
        f"precision {args.precision}"
    )
    model_paths = {}
    for name in args.models:
        model_path = model_paths[name] = export_model(work / f"{name}.pt", MODELS[name], info.height, info.width)
        predictor = Predictor(
            load_model(model_path), batch_size=args.batch_size, compile=args.compile, precision=args.precision
        )
        n_params = sum(p.numel() for p in load_model(model_path).model.parameters())
        architecture, hyperparameters, description = MODELS[name]
        print(f"model {name}: {description}: {architecture} {hyperparameters}, {n_params:,} parameters")
        rows, cpu_per_frame, cpu_ratios = [], [], []
        for repeat in range(args.repeats):
            decode, frames = decode_fps(args.video, info, n, args.batch_size)
            forward, forward_cpu, first = forward_fps(predictor, frames, n)
            out = work / f"e2e-{name}.parquet"
            e2e = end_to_end(
                args.video, model_path, n, args.batch_size, args.threads, out, args.compile, args.precision
            )
            rows.append((decode, forward, e2e["fps"]))
            cpu_per_frame.append(e2e["cpu_s"] / n)
            cpu_ratios.append(forward_cpu / cpu_per_frame[-1])
            print(
                f"{name} repeat {repeat}: decode {decode:.1f} fps, forward {forward:.2f} fps (first batch "
                f"{first:.1f} s), end-to-end {e2e['fps']:.2f} fps, end-to-end / forward {e2e['fps'] / forward:.3f}; "
                f"CPU s/frame: forward {forward_cpu:.3f}, end-to-end {cpu_per_frame[-1]:.3f}, "
                f"forward / end-to-end {cpu_ratios[-1]:.3f}",
                flush=True,
            )
        decode, forward, e2e = (statistics.median(column) for column in zip(*rows, strict=True))
        ratio = statistics.median(r[2] / r[1] for r in rows)
        print(
            f"{name} median: decode {decode:.1f} fps, forward {forward:.2f} fps, end-to-end {e2e:.2f} fps; "
            f"end-to-end / forward {ratio:.3f}; end-to-end / min(decode, forward) {e2e / min(decode, forward):.3f}; "
            f"end-to-end CPU {statistics.median(cpu_per_frame):.3f} s/frame (process and its ffmpeg, model load "
            f"included), forward / end-to-end CPU time {statistics.median(cpu_ratios):.3f}",
            flush=True,
        )

    if args.long_model == "skip":
        return
    long_video = concatenate(args.video, args.long_factor, work / f"long{args.long_factor}.mp4")
    rss_model = model_paths[args.models[0]]
    if args.long_model == "tiny":
        rss_model = export_model(work / "tiny.pt", TINY, info.height, info.width)
    label = f"model {args.models[0]}" if args.long_model == "same" else f"{TINY[2]} {TINY[1]}"
    short = end_to_end(args.video, rss_model, None, args.batch_size, args.threads, work / "short.parquet")
    long = end_to_end(long_video, rss_model, None, args.batch_size, args.threads, work / "long.parquet")
    print(
        f"peak RSS with {label}: {short['peak_rss_mb']:.0f} MB on {short['frames']} frames "
        f"({short['fps']:.1f} fps), {long['peak_rss_mb']:.0f} MB on {long['frames']} frames "
        f"({long['fps']:.1f} fps); ratio {long['peak_rss_mb'] / short['peak_rss_mb']:.3f}"
    )


if __name__ == "__main__":
    main()
