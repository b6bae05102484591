"""`posecore predict VIDEO --model FILE`: trajectories of one video without Snakemake.

Writes, into `--out` (default: beside the video), `<video>.parquet` (the long-format
trajectories of docs/design.md, with provenance), and with `--filter` the filtered coordinates
beside the raw ones, and with `--export` DeepLabCut H5/CSV, NWB and SLEAP files of the same
points. A top-down model file (several animals per frame) detects the animals of every frame
and tracks them over the range (`--count`: the model's `max_animals` always there, or at
most): the trajectories then have an instance per track (docs/multianimal.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posecore.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

from posecore.io.exports import EXPORTS


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `predict` subcommand."""
    parser = subparsers.add_parser("predict", help="keypoints of one video with an exported model")
    parser.add_argument("video", type=Path, help="the video file")
    parser.add_argument("--model", type=Path, required=True, help="exported model (model.pt)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: the video's folder)")
    parser.add_argument("--keypoints", default=None, help="comma-separated keypoints the model must have, in order")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where the model runs")
    parser.add_argument("--batch-size", type=positive, default=8, help="frames per forward pass")
    parser.add_argument("--threads", type=positive, default=None, help="CPU threads for the model (default: torch's)")
    parser.add_argument(
        "--decoders",
        type=positive,
        default=None,
        help="parts of the video decoded at once, each by its own ffmpeg (default: one per CPU thread)",
    )
    parser.add_argument(
        "--compile",
        choices=("auto", "always", "never"),
        default="auto",
        help="torch.compile the model (auto: on a GPU only)",
    )
    parser.add_argument(
        "--precision",
        choices=("auto", "float32", "bfloat16"),
        default="auto",
        help="the forward's numbers (auto: bfloat16 on a GPU, float32 on the CPU; bfloat16 is fast on CPUs with AMX)",
    )
    parser.add_argument(
        "--no-priors",
        dest="priors",
        action="store_false",
        help="take each confidence map's highest peak, without the priors learned from the training labels",
    )
    parser.add_argument("--start", type=int, default=0, help="first frame")
    parser.add_argument("--stop", type=int, default=None, help="one past the last frame (default: the end)")
    parser.add_argument("--filter", choices=("none", "median", "savgol"), default="none", help="temporal filter")
    parser.add_argument("--window", type=int, default=5, help="filter window in frames (odd, at least 3)")
    parser.add_argument("--min-score", type=float, default=0.1, help="points below it are interpolated over")
    parser.add_argument("--max-gap", type=int, default=5, help="longest gap (frames) the filter interpolates")
    parser.add_argument("--export", choices=EXPORTS, nargs="*", default=[], help="also write these formats")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--count",
        choices=("known", "maximum"),
        default="known",
        help="top-down models: the model's max_animals are always there (known) or at most (maximum)",
    )
    parser.set_defaults(func=run)


def positive(text: str) -> int:
    """An integer of at least 1, for argparse (which then names the option in its error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse arguments that would fail after the work: before any frame is read.

    Raises:
        InputError: naming the file or option and what is wrong.
    """
    from posecore.filters import FilterConfig

    if args.video.is_dir():
        raise InputError(args.video, "is a folder, not a video file")
    if not args.video.is_file():
        raise InputError(args.video, "no such video file")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise InputError(args.out, "--out must be a folder (it is created when missing); this is a file")
    if args.filter != "none":
        try:
            FilterConfig(method=args.filter, window=args.window, min_score=args.min_score, max_gap=args.max_gap)
        except ValueError as error:
            raise InputError("--filter", str(error)) from None


def run(args: argparse.Namespace) -> int:
    """Probe, infer (and track a top-down model's animals), optionally filter and export; print where the files went."""
    check_arguments(args)
    import pandas as pd
    import torch

    from posecore.filters import FilterConfig, filter_trajectories
    from posecore.infer.job import check_keypoints, set_threads
    from posecore.infer.single import infer_video
    from posecore.io.exports import export_name, write_export
    from posecore.io.trajectories import read_provenance
    from posecore.io.video import probe
    from posecore.multi.predict import TopDownModel, load_any_model
    from posecore.multi.tracking import TrackerConfig
    from posecore.predict import resolve_device

    device = resolve_device(args.device)
    if args.threads is not None:
        set_threads(args.threads)
    loaded = load_any_model(args.model, device=device)
    tracking = None
    if isinstance(loaded, TopDownModel):  # several animals per frame: detected, then tracked
        if args.filter != "none" or "nwb" in args.export:
            raise InputError(args.model, "a top-down model's tracks are not filtered or written as NWB: drop "
                             "--filter and --export nwb")  # fmt: skip
        tracking = TrackerConfig(n_animals=loaded.config.max_animals, count=args.count)
    if args.keypoints is not None:
        check_keypoints(loaded.meta, [k.strip() for k in args.keypoints.split(",") if k.strip()], args.model)
    info = probe(args.video)
    stop = info.n_frames if args.stop is None else args.stop
    if not 0 <= args.start < stop <= info.n_frames:
        raise InputError(args.video, f"frames [{args.start}, {stop}) are not inside [0, {info.n_frames})")
    out_dir = args.out or args.video.parent
    parquet = out_dir / f"{args.video.stem}.parquet"
    config = {"command": "predict", "model": str(args.model), "filter": args.filter}
    if tracking is not None:
        config["count"] = args.count
    threads = args.threads or torch.get_num_threads()
    n_rows = infer_video(
        args.video,
        info,
        loaded,
        parquet,
        start=args.start,
        stop=stop,
        decoders=args.decoders or threads,
        threads_per_decoder=1,
        batch_size=args.batch_size,
        device=device,
        config=config,
        compile=args.compile,
        precision=args.precision,
        priors=args.priors,
        progress=not args.quiet,
        tracking=tracking,
    )
    written = [parquet]
    if args.filter != "none" or args.export:
        table = pd.read_parquet(parquet)
        values = "raw"
        if args.filter != "none":
            fc = FilterConfig(method=args.filter, window=args.window, min_score=args.min_score, max_gap=args.max_gap)
            table = filter_trajectories(table, fc)
            values = "filtered"
            metadata = read_provenance(parquet)
            _write_filtered(table, parquet, metadata)
        scorer = f"posecore-{loaded.sha256[:12]}"
        for kind in args.export:
            path = out_dir / export_name(args.video.stem, kind, scorer)
            write_export(
                kind,
                table,
                path,
                keypoint_names=loaded.meta.keypoint_names,
                skeleton=loaded.meta.skeleton,
                video_path=args.video,
                scorer=scorer,
                values=values if kind != "slp" else "raw",
                video_shape=(info.n_frames, info.height, info.width, 3),
            )
            written.append(path)
    frames = stop - args.start
    tracks = f", {n_rows // max(frames * len(loaded.meta.keypoint_names), 1)} tracks" if tracking is not None else ""
    print(f"{args.video}: {frames} frames{tracks}")
    for path in written:
        print(f"  {path}")
    return 0


def _write_filtered(table: pd.DataFrame, path: Path, provenance: dict[str, Any]) -> None:
    """Rewrite the trajectory file with the filtered columns beside the raw ones, keeping its provenance."""
    import json

    import pyarrow as pa

    from posecore.io.trajectories import METADATA_KEY, write_atomic

    arrow = pa.Table.from_pandas(table, preserve_index=False)
    arrow = arrow.replace_schema_metadata({METADATA_KEY: json.dumps(provenance, sort_keys=True).encode()})
    write_atomic(arrow, path)
