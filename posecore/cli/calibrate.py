"""`posecore calibrate RIG.yaml OUT_DIR`: calibrate a camera rig without Snakemake.

RIG.yaml holds one rig as the workflow config's `threed.rigs.<name>` does: `board`, `cameras`
(per camera a glob of its calibration images, or its calibration video) and optionally
`calibration`. Writes OUT_DIR/calibration.toml (Anipose's layout, millimetres), corners.parquet
and summary.json, as the `calibrate` rule does (`posecore.threed.files`), and prints the RMS
reprojection errors and the board's edges triangulated back.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `calibrate` subcommand."""
    parser = subparsers.add_parser("calibrate", help="calibrate a multi-camera rig from board images or videos")
    parser.add_argument("rig", type=Path, help="YAML file of one rig (board, cameras, calibration)")
    parser.add_argument("out_dir", type=Path, help="folder for calibration.toml, corners.parquet, summary.json")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Detect, calibrate, write; print the figures."""
    import logging

    import yaml

    from posecore.errors import InputError
    from posecore.threed.files import calibrate_rig, write_outputs

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        rig = yaml.safe_load(args.rig.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise InputError(args.rig, f"not a readable YAML file ({error})") from None
    if not isinstance(rig, dict) or "board" not in rig or "cameras" not in rig:
        raise InputError(args.rig, "a rig needs `board` and `cameras` (as under threed.rigs.<name> in the config)")
    calibration = calibrate_rig(rig, str(args.rig))
    out = args.out_dir
    write_outputs(calibration, out / "calibration.toml", out / "corners.parquet", out / "summary.json")
    s = calibration.summary
    print(f"{out / 'calibration.toml'}: {len(calibration.rig.cameras)} cameras, RMS reprojection error "
          f"{s['rms_all_px']:.3f} px over all corners ({s['rms_px']:.3f} px over the {s['corners']} kept)")  # fmt: skip
    for name, camera in s["cameras"].items():
        print(
            f"  {name}: {camera['rms_all_px']:.3f} px ({camera['frames']} frames, {camera['dropped']} corners dropped)"
        )
    print(f"  board edges triangulated back: median {s['edge_error_median_mm']:.3f} mm, "
          f"90th percentile {s['edge_error_p90_mm']:.3f} mm")  # fmt: skip
    return 0
