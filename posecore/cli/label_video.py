"""`posecore label-video VIDEO TRAJECTORIES OUT`: keypoints and skeleton drawn over a video, as H.264 MP4.

The skeleton and the keypoints' colour order come from `--model` (the exported model that made
the trajectories); `--edge A B` (repeated) gives the skeleton instead; without either, points
only, coloured in the file's keypoint order.
See `posecore.labeled_video`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from posecore.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `label-video` subcommand."""
    parser = subparsers.add_parser(
        "label-video", help="draw a video's keypoints and skeleton over it (H.264 MP4), as DeepLabCut's labeled videos"
    )
    parser.add_argument("video", type=Path, help="the video")
    parser.add_argument(
        "trajectories", type=Path, help="its trajectories: Parquet file, or the archive's video=<name> folder"
    )
    parser.add_argument("out", type=Path, help="the MP4 to write")
    parser.add_argument("--model", type=Path, default=None, help="exported model: its keypoint order and skeleton")
    parser.add_argument(
        "--edge",
        nargs=2,
        action="append",
        metavar=("A", "B"),
        help="a skeleton edge between keypoints A and B; repeat it for each edge (replaces the model's skeleton)",
    )
    parser.add_argument("--start", type=int, default=0, help="first frame (default 0)")
    parser.add_argument("--stop", type=int, default=None, help="one past the last frame (default: the end)")
    parser.add_argument("--trail", type=int, default=0, help="frames of trail behind each point (default 0: none)")
    parser.add_argument("--min-score", type=float, default=0.1, help="points scoring below it are not drawn (0.1)")
    parser.add_argument("--radius", type=float, default=0.0, help="point radius in pixels (default: from the size)")
    parser.add_argument("--no-frame-number", dest="show_frame", action="store_false", help="no frame index and time")
    parser.add_argument("--crf", type=int, default=23, help="x264 quality: lower is better and bigger (default 23)")
    parser.add_argument("--preset", default="veryfast", help="x264 speed preset (default veryfast)")
    parser.add_argument("--threads", type=int, default=None, help="encoder threads (default: x264's choice)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Draw and encode; print what was written."""
    from posecore.labeled_video import LabelStyle, label_video

    try:
        style = LabelStyle(args.min_score, args.trail, args.radius, args.show_frame, args.crf, args.preset)
    except ValueError as error:
        raise InputError("command line", str(error)) from None
    names, skeleton = None, ()
    if args.model is not None:
        from posecore.models.export import load_model

        meta = load_model(args.model).meta
        names, skeleton = meta.keypoint_names, meta.skeleton
    if args.edge:
        skeleton = [tuple(edge) for edge in args.edge]
    written = label_video(
        args.video,
        args.trajectories,
        args.out,
        style=style,
        skeleton=skeleton,
        keypoint_names=names,
        start=args.start,
        stop=args.stop,
        threads=args.threads,
        progress=not args.quiet,
    )
    start, stop = written.frames
    print(f"{args.video}: frames [{start}, {stop}) labeled in {written.path}")
    return 0
