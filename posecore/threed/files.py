"""A rig's calibration as files: calibration.toml, the corners it was fitted to, and its figures.

`calibrate_rig` runs the whole stage from a rig's config mapping (board, calibration images or
videos per camera, options), as the workflow's `calibrate` rule does, and writes

- `calibration.toml`: the rig (`posecore.threed.rig`, readable by Anipose);
- `corners.parquet`: every corner detected, one row each: camera, frame (index and label),
  corner id, x, y (pixels), its residual (detected minus reprojected, pixels) and whether the
  final adjustment used it (`inlier`);
- `summary.json`: the figures of `calibrate.calibration_summary` (RMS reprojection errors over
  all corners and over the inliers, per camera; the board's edges triangulated back).

All three are written atomically and are byte-identical for the same input.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from posecore.errors import InputError
from posecore.io.atomic import atomic_path
from posecore.threed.boards import Board
from posecore.threed.calibrate import Calibration, calibrate
from posecore.threed.detection import detect
from posecore.threed.options import CalibrationConfig
from posecore.threed.rig import write_calibration
from posecore.threed.sheet import calibration_sources

logger = logging.getLogger(__name__)


def calibrate_rig(rig: Mapping[str, Any], source: str) -> Calibration:
    """Detect the board and calibrate one rig of the config (`threed.rigs.<name>`).

    Args:
        rig: mapping with `board`, `cameras` (camera -> image glob or video file) and optionally
            `calibration` (`CalibrationConfig` keys).
        source: where the mapping comes from, for messages (e.g. "config: threed.rigs.arena").
    """
    board = Board.from_dict(rig["board"], f"{source}.board")
    config = CalibrationConfig.from_dict(rig.get("calibration", {}), f"{source}.calibration")
    sources = calibration_sources(rig)
    for camera, files in sources.items():
        missing = [f for f in ([files] if isinstance(files, str) else files) if not Path(f).exists()]
        if missing:
            raise InputError(missing[0], f"camera {camera!r}: calibration input not found ({source}.cameras.{camera})")
    detections = detect(
        board, sources, max_frames=config.max_frames, max_candidates=config.max_candidates, progress=logger.info
    )
    return calibrate(board, detections, config)


def write_outputs(calibration: Calibration, toml: Path, corners: Path, summary: Path) -> None:
    """Write the calibration's three files (see the module docstring)."""
    write_calibration(calibration.rig, toml)
    det = calibration.detections
    c, f, k = np.nonzero(np.isfinite(det.corners[..., 0]))
    table = pa.table(
        {
            "camera": pa.DictionaryArray.from_arrays(c.astype(np.int16), pa.array(list(det.cameras))),
            "frame": f.astype(np.int32),
            "frame_label": pa.DictionaryArray.from_arrays(f.astype(np.int32), pa.array(list(det.frames))),
            "corner": k.astype(np.int32),
            "x": det.corners[c, f, k, 0],
            "y": det.corners[c, f, k, 1],
            "residual_x": calibration.residuals[c, f, k, 0],
            "residual_y": calibration.residuals[c, f, k, 1],
            "inlier": calibration.inliers[c, f, k],
        }
    )
    table = table.replace_schema_metadata(
        {b"posecore": json.dumps({"sizes": det.sizes, "sources": det.sources}).encode()}
    )
    with atomic_path(corners) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    with atomic_path(summary) as tmp:
        tmp.write_text(json.dumps(calibration.summary, indent=1, sort_keys=True, default=float) + "\n")


def read_corners(
    path: str | Path, n_corners: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], list[tuple[int, int]]]:
    """The corners file back as arrays, for a board of `n_corners` corners.

    Returns:
        corners float64 (C, F, N, 2) (NaN where not detected), residuals (C, F, N, 2), inliers bool
        (C, F, N), the camera names and their image sizes (width, height).
    """
    table = pq.read_table(path)
    meta = json.loads((table.schema.metadata or {}).get(b"posecore", b"{}"))
    cameras = [str(n) for n in table.column("camera").combine_chunks().dictionary.to_pylist()]
    frames = table.column("frame_label").combine_chunks().dictionary
    c = table.column("camera").combine_chunks().indices.to_numpy()
    f = table.column("frame").to_numpy()
    k = table.column("corner").to_numpy()
    shape = (len(cameras), len(frames), n_corners)
    corners = np.full((*shape, 2), np.nan)
    residuals = np.full((*shape, 2), np.nan)
    inliers = np.zeros(shape, dtype=bool)
    corners[c, f, k] = np.stack([table.column("x").to_numpy(), table.column("y").to_numpy()], axis=1)
    residuals[c, f, k] = np.stack(
        [table.column("residual_x").to_numpy(), table.column("residual_y").to_numpy()], axis=1
    )
    inliers[c, f, k] = table.column("inlier").to_numpy()
    return corners, residuals, inliers, cameras, [tuple(s) for s in meta.get("sizes", [])]
