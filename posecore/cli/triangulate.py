"""`posecore triangulate CALIBRATION OUT --view CAMERA=TRAJECTORIES[:OFFSET] ...`: 3D without Snakemake.

Each view is one camera's 2D trajectory file (as `posecore predict` writes it), with the frames it
recorded before the session's first frame after a colon. Writes OUT, the session's 3D
trajectories (`posecore.threed.trajectories`), as the `triangulate` rule does.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `triangulate` subcommand."""
    parser = subparsers.add_parser("triangulate", help="3D trajectories of one session from its cameras' 2D ones")
    parser.add_argument("calibration", type=Path, help="calibration.toml (posecore's or Anipose's)")
    parser.add_argument("out", type=Path, help="the 3D trajectory file to write (.parquet)")
    parser.add_argument("--view", action="append", required=True, metavar="CAMERA=FILE[:OFFSET]",
                        help="a camera's 2D trajectory file (repeat for every camera)")  # fmt: skip
    parser.add_argument("--session", default="session", help="the session's name, for messages")
    parser.add_argument("--threshold-px", type=float, default=20.0, help="views further off are left out (20)")
    parser.add_argument("--min-score", type=float, default=0.2, help="2D points scoring lower are not used (0.2)")
    parser.add_argument("--refine", action="store_true", help="run the spatiotemporal refinement")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Triangulate the views and write the file."""
    from posecore.errors import InputError
    from posecore.threed.options import TriangulationConfig
    from posecore.threed.session import View, run_session

    views = []
    for text in args.view:
        camera, sep, rest = text.partition("=")
        path, _, offset = rest.rpartition(":") if rest.rpartition(":")[2].isdigit() else (rest, "", "0")
        if not sep or not camera or not path:
            raise InputError(text, "a view is CAMERA=FILE or CAMERA=FILE:OFFSET")
        views.append(View(camera, camera, Path(path), int(offset)))
    config = TriangulationConfig(min_score=args.min_score, threshold_px=args.threshold_px, refine=args.refine)
    table = run_session(args.calibration, views, args.session, config, [], args.out)
    made = int((table.column("n_cameras").to_numpy() >= 2).sum())
    print(f"{args.out}: {made} of {table.num_rows} points triangulated")
    return 0
