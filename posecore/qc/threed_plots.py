"""Figures of the report's 3D section: where the board was, its residuals, the rig, the 3D poses.

Drawn like every report figure (`posecore.qc.plots`): matplotlib's Agg canvas without pyplot.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from posecore.qc.plots import _colors, _new_figure
from posecore.threed.rig import Rig


def board_coverage(
    rig: Rig, corners: np.ndarray, residuals: np.ndarray, inliers: np.ndarray, regions: Sequence[np.ndarray | None]
) -> Figure:
    """Per camera, where in the image the board's corners were, coloured by residual; outliers red.

    Args:
        rig: the cameras (their image sizes).
        corners: float64 (C, F, N, 2) detected corners (NaN where not).
        residuals: float64 (C, F, N, 2) detected minus reprojected, pixels.
        inliers: bool (C, F, N) corners the calibration used.
        regions: per camera, the board region's outline (M, 2), or None.
    """
    n = len(rig.cameras)
    columns = min(n, 4)
    rows = -(-n // columns)
    figure = _new_figure(3.0 * columns + 0.8, 2.6 * rows + 0.4)
    panels = figure.subplots(rows, columns, squeeze=False)
    scatter = None
    for index, axes in enumerate(panels.flat):
        if index >= n:
            axes.set_visible(False)
            continue
        camera = rig.cameras[index]
        width, height = camera.size
        norm = np.linalg.norm(residuals[index], axis=-1)
        keep = inliers[index]
        dropped = np.isfinite(norm) & ~keep
        scatter = axes.scatter(*corners[index][keep].T, c=norm[keep], s=2, cmap="viridis", vmin=0, vmax=1.0)
        axes.scatter(*corners[index][dropped].T, marker="x", s=10, color="#c44e52", linewidths=0.8)
        if regions[index] is not None and len(regions[index]) >= 3:
            outline = np.vstack([regions[index], regions[index][:1]])
            axes.plot(outline[:, 0], outline[:, 1], color="black", linewidth=0.8)
        axes.set_xlim(0, width)
        axes.set_ylim(height, 0)
        axes.set_aspect("equal")
        axes.set_title(f"{camera.name}: {int(dropped.sum())} dropped", fontsize="small")
        axes.tick_params(labelsize="x-small")
    if scatter is not None:
        figure.colorbar(scatter, ax=panels, shrink=0.8, label="residual (px)")
    return figure


def residual_summary(
    names: Sequence[str], residuals: np.ndarray, inliers: np.ndarray, grid: tuple[int, int], square_mm: float,
    edge_errors: np.ndarray,
) -> Figure:  # fmt: skip
    """Three panels: the residuals' distribution per camera, the RMS per board corner, the edges' errors.

    Args:
        names: camera names (C).
        residuals: float64 (C, F, N, 2) pixels.
        inliers: bool (C, F, N).
        grid: (columns, rows) of the board's corners.
        square_mm: the board's square, for the edge panel's title.
        edge_errors: |length - square_mm| of the edges triangulated back, mm.
    """
    figure = _new_figure(12.0, 3.2)
    hist, board, edges = figure.subplots(1, 3)
    norm = np.linalg.norm(residuals, axis=-1)  # (C, F, N)
    top = max(float(np.nanpercentile(norm, 99.5)) if np.isfinite(norm).any() else 1.0, 0.5)
    bins = np.linspace(0, top, 40)
    for c, (name, colour) in enumerate(zip(names, _colors(len(names)), strict=True)):
        values = norm[c][np.isfinite(norm[c])]
        hist.hist(values, bins=bins, histtype="step", color=colour, label=name)
    hist.set_yscale("log")
    hist.set_xlabel("|residual| (px)")
    hist.set_ylabel("corners")
    hist.legend(fontsize="x-small")
    hist.set_title("Residuals per camera (all corners)", fontsize="small")
    squared = np.where(inliers, norm**2, np.nan)
    with np.errstate(invalid="ignore"):
        per_corner = np.sqrt(np.nanmean(squared.reshape(-1, squared.shape[-1]), axis=0))  # (N,)
    image = board.imshow(per_corner.reshape(grid[1], grid[0]), cmap="viridis", vmin=0)
    figure.colorbar(image, ax=board, shrink=0.8, label="RMS (px)")
    board.set_title("RMS per board corner (kept corners)", fontsize="small")
    board.set_xlabel("corner column")
    board.set_ylabel("corner row")
    if len(edge_errors):
        edges.hist(edge_errors, bins=40, color="#4c72b0")
        for q, style in ((50, "-"), (90, "--")):
            edges.axvline(np.percentile(edge_errors, q), color="black", linestyle=style, linewidth=0.8, label=f"p{q}")
        edges.legend(fontsize="x-small")
    edges.set_xlabel("edge length error (mm)")
    edges.set_title(f"Board edges ({square_mm:g} mm) triangulated back", fontsize="small")
    return figure


def rig_picture(rig: Rig, board_points: np.ndarray) -> Figure:
    """The cameras (centres and viewing directions) and the board's corners triangulated, in 3D (mm).

    Args:
        rig: the cameras.
        board_points: float64 (M, 3) corners triangulated back (NaN allowed).
    """
    figure = _new_figure(6.0, 5.0)
    axes = figure.add_subplot(projection="3d")
    points = board_points[np.isfinite(board_points).all(axis=1)]
    if len(points):
        axes.scatter(*points.T, s=1, color="#999999", alpha=0.5)
    centres = np.stack([c.centre for c in rig.cameras])
    scale = np.ptp(np.vstack([centres, points]), axis=0).max() * 0.15 if len(points) else 100.0
    for camera, colour in zip(rig.cameras, _colors(len(rig.cameras)), strict=True):
        forward = camera.rotation_matrix[2]
        tip = camera.centre + scale * forward
        axes.plot(*np.stack([camera.centre, tip]).T, color=colour, linewidth=2)
        axes.scatter(*camera.centre, color=colour, s=30)
        axes.text(*camera.centre, f" {camera.name}", fontsize="small")
    _equal_axes(axes, np.vstack([centres, points]) if len(points) else centres)
    return figure


def _equal_axes(axes, points: np.ndarray) -> None:
    """Limits of a 3D plot around `points` (M, 3), the same length on every axis, and axis labels in mm."""
    points = points[np.isfinite(points).all(axis=1)]
    if len(points):
        middle = (points.min(axis=0) + points.max(axis=0)) / 2
        half = np.ptp(points, axis=0).max() / 2 + 1
        for setter, m in zip((axes.set_xlim, axes.set_ylim, axes.set_zlim), middle, strict=True):
            setter(m - half, m + half)
    axes.set_xlabel("x (mm)")
    axes.set_ylabel("y (mm)")
    axes.set_zlabel("z (mm)")


def session_over_time(table: pd.DataFrame, keypoints: Sequence[str], n_cameras: int) -> Figure:
    """Per keypoint, the reprojection error (px) and the number of cameras used, against time.

    Args:
        table: one session's 3D rows (instance 0 is shown when there are several).
        keypoints: names in legend order.
        n_cameras: the session's cameras.
    """
    figure = _new_figure(10.0, 4.8)
    error_axes, camera_axes = figure.subplots(2, 1, sharex=True)
    first = table[table["instance"] == table["instance"].min()]
    colours = dict(zip(keypoints, _colors(len(keypoints)), strict=True))
    for name, rows in first.groupby("keypoint", observed=True, sort=False):
        rows = rows.sort_values("frame")
        error_axes.plot(
            rows["time_s"], rows["reprojection_px"], color=colours[str(name)], linewidth=0.8, label=str(name)
        )
        camera_axes.plot(rows["time_s"], rows["n_cameras"], color=colours[str(name)], linewidth=0.8)
    error_axes.set_ylabel("reprojection (px)")
    error_axes.set_yscale("symlog", linthresh=1.0)
    camera_axes.set_ylabel("cameras used")
    camera_axes.set_ylim(-0.2, n_cameras + 0.2)
    camera_axes.set_xlabel("time (s)")
    figure.legend(loc="outside right upper", fontsize="small", frameon=False)
    return figure


def poses_3d(
    table: pd.DataFrame, keypoints: Sequence[str], edges: Sequence[tuple[str, str]], n_poses: int = 6
) -> Figure:
    """A few 3D poses spread over the session (skeleton drawn), and the first keypoint's path.

    Args:
        table: one session's 3D rows.
        keypoints: names.
        edges: skeleton edges by name.
        n_poses: poses shown.
    """
    figure = _new_figure(6.0, 5.0)
    axes = figure.add_subplot(projection="3d")
    first = table[table["instance"] == table["instance"].min()]
    frames = np.sort(first["frame"].unique())
    path = first[first["keypoint"].astype(str) == keypoints[0]].sort_values("frame")
    axes.plot(path["x"], path["y"], path["z"], color="#bbbbbb", linewidth=0.7, label=f"{keypoints[0]} path")
    colours = _colors(n_poses)
    for colour, frame in zip(
        colours, frames[np.linspace(0, len(frames) - 1, n_poses).round().astype(int)], strict=False
    ):
        pose = first[first["frame"] == frame].set_index(first["keypoint"].astype(str)[first["frame"] == frame])
        axes.scatter(pose["x"], pose["y"], pose["z"], color=colour, s=6)
        for a, b in edges:
            if a in pose.index and b in pose.index:
                axes.plot(*[[pose.at[a, c], pose.at[b, c]] for c in "xyz"], color=colour, linewidth=1)
        axes.text(pose["x"].iloc[0], pose["y"].iloc[0], pose["z"].iloc[0], f" {frame}", fontsize="x-small")
    _equal_axes(axes, first[["x", "y", "z"]].to_numpy(dtype=float))
    axes.legend(fontsize="x-small")
    return figure
