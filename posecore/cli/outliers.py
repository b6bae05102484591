"""`posecore outliers TRAJECTORIES VIDEO OUT_DIR`: frames to label next, where the model is unsure.

Writes OUT_DIR as a DeepLabCut project folder (config.yaml, labeled-data/<video>/ with the
frames and the model's predictions as machinelabels-iter<N>.h5/.csv, outliers.tsv, README.txt)
that DeepLabCut and napari-deeplabcut open; see `posecore.outliers`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# The options that set `OutlierConfig` fields: (flag, type, help). Their defaults are the
# dataclass's, written into the help here so that `posecore --help` does not import pandas.
CONFIG_OPTIONS = (
    ("--n-frames", int, "frames to pick at most (default 20)"),
    ("--min-score", float, "flag frames whose score statistic is below it (default 0.5)"),
    ("--score-stat", str, "any: the lowest keypoint score; mean: the mean over keypoints (default any)"),
    ("--jump-px", float, "flag frames where a keypoint moves more pixels than this (default 20)"),
    ("--min-gap", int, "picked frames are at least this many frames apart (default 10)"),
    ("--nan-below", float, "predicted points scoring below it are written as NaN (default 0.1)"),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `outliers` subcommand."""
    parser = subparsers.add_parser("outliers", help="outlier frames of one video, for the next labeling round")
    parser.add_argument("trajectories", type=Path, help="the video's trajectories (Parquet file or folder)")
    parser.add_argument("video", type=Path, help="the video they were predicted from")
    parser.add_argument("out_dir", type=Path, help="folder to write (replaced whole)")
    for flag, kind, text in CONFIG_OPTIONS:
        parser.add_argument(flag, type=kind, default=None, help=text)
    parser.add_argument("--labeler", default="labeler", help="who corrects them: CollectedData_<labeler>.h5")
    parser.add_argument("--scorer", default=None, help="machine-label scorer (default: posecore-<model hash>)")
    parser.add_argument("--video-name", default=None, help="name in labeled-data/ (default: the video's stem)")
    parser.add_argument("--iteration", type=int, default=0, help="refinement round: machinelabels-iter<N>.h5")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Pick and write the outlier frames; print them, worst first."""
    from posecore.outliers import OutlierConfig, extract_outliers

    given = {flag[2:].replace("-", "_"): getattr(args, flag[2:].replace("-", "_")) for flag, _, _ in CONFIG_OPTIONS}
    try:
        config = OutlierConfig(**{name: value for name, value in given.items() if value is not None})
    except ValueError as error:
        print(f"posecore outliers: error: {error}", file=sys.stderr)
        return 2
    picks = extract_outliers(
        args.trajectories,
        args.video,
        args.out_dir,
        config,
        labeler=args.labeler,
        scorer=args.scorer,
        video_name=args.video_name,
        iteration=args.iteration,
    )
    print(f"{args.video}: {len(picks)} outlier frames in {args.out_dir}")
    for row in picks.itertuples():
        print(f"  {row.rank:3d}  frame {row.frame:6d}  {row.reason:15s}  severity {row.severity:.2f}")
    return 0
