"""The 3D section of the QC report: each rig's calibration and each session's 3D trajectories.

Per rig: the true RMS reprojection error (the root mean square of every corner's residual
vector, over all corners and over those kept), per camera; where the board was in each image
(the region the lens model was fitted in) and the residuals there; the RMS per board corner; the
board's edges triangulated back against the square size, in mm; a picture of the rig. Per
session: per keypoint the reprojection error, the cameras used and how often a view was left
out for disagreeing, or lay outside the board's region; those over time; the frames where views
disagree most; the time shifts between cameras that fit the geometry better than none; a few
3D poses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from posecore.qc import threed_plots
from posecore.qc.html import ReportFigure, Section, esc, fmt, table
from posecore.qc.plots import figure_to_png
from posecore.threed.boards import Board
from posecore.threed.calibrate import board_edge_errors, residual_figures
from posecore.threed.files import read_corners
from posecore.threed.rig import read_calibration
from posecore.threed.trajectories import read_metadata3d
from posecore.threed.triangulate import triangulate_linear

WORST_FRAMES = 10
"""Frames listed where most views were left out."""


@dataclass(frozen=True)
class ThreeDInputs:
    """The 3D files the report shows.

    Attributes:
        calibrations: per rig, its (calibration.toml, corners.parquet).
        sessions: per session, its 3D trajectory file.
        skeleton: edges by keypoint name, for the pose figure.
    """

    calibrations: Mapping[str, tuple[Path, Path]] = field(default_factory=dict)
    sessions: Mapping[str, Path] = field(default_factory=dict)
    skeleton: Sequence[tuple[str, str]] = ()


def threed_section(inputs: ThreeDInputs) -> Section:
    """The report's "3D" section."""
    body, figures = [], []
    for rig_name, (toml, corners) in inputs.calibrations.items():
        html, figs = _calibration(rig_name, Path(toml), Path(corners))
        body.append(html)
        figures.extend(figs)
    for session, path in inputs.sessions.items():
        html, figs = _session(session, Path(path), inputs.skeleton)
        body.append(html)
        figures.extend(figs)
    return Section("3D", "\n".join(body), tuple(figures))


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "_.-" else "-" for ch in name.lower())


def _calibration(name: str, toml: Path, corners_path: Path) -> tuple[str, list[ReportFigure]]:
    rig = read_calibration(toml)
    board = Board(**rig.metadata["board"])
    corners, residuals, inliers, cameras, _ = read_corners(corners_path, board.n_corners)
    rig = rig.subset(cameras)
    overall, per_camera = residual_figures(residuals, inliers)
    edges = board_edge_errors(rig, board, corners)
    rows = []
    regions = [rig.board_region(c) for c in cameras]
    for camera, figures, region in zip(rig.cameras, per_camera, regions, strict=True):
        width, height = camera.size
        area = 0.0 if region is None or len(region) < 3 else _polygon_area(region) / (width * height)
        rows.append(
            [
                esc(camera.name),
                str(figures["frames"]),
                str(figures["corners"] + figures["dropped"]),
                str(figures["dropped"]),
                fmt(figures["rms_all_px"], 3),
                fmt(figures["rms_px"], 3),
                fmt(camera.focal, 1),
                f"{area:.0%}",
            ]
        )
    header = ["camera", "frames", "corners", "dropped", "RMS all (px)", "RMS kept (px)", "focal (px)", "board region"]
    median, p90 = (float(np.percentile(edges, q)) if len(edges) else float("nan") for q in (50, 90))
    text = (
        f"<h3>Calibration of rig {esc(name)}</h3>\n<p>{len(cameras)} cameras, {esc(board.kind)} board of "
        f"{board.squares_x} x {board.squares_y} squares of {board.square_mm:g} mm; world frame: "
        f"{esc(rig.metadata.get('origin', '?'))}. RMS reprojection error <b>{fmt(overall['rms_all_px'], 3)} px</b> "
        f"over all {overall['corners'] + overall['dropped']} corners detected ({fmt(overall['rms_px'], 3)} px over "
        f"the {overall['corners']} kept; {overall['dropped']} dropped as outliers). The board's "
        f"{board.square_mm:g} mm edges triangulated back: median error <b>{fmt(median, 3)} mm</b>, "
        f"90th percentile {fmt(p90, 3)} mm ({len(edges)} edges). Points outside a camera's board region (its "
        "outline below) lie where the lens model was never fitted: the 3D tables flag them.</p>\n"
    )
    slug = _slug(name)
    points = triangulate_linear(
        rig.projections,
        rig.undistort(corners.reshape(len(cameras), -1, 2)),
        np.isfinite(corners.reshape(len(cameras), -1, 2)[..., 0]).astype(float),
    )
    figures = [
        ReportFigure(
            f"threed-{slug}-board",
            figure_to_png(threed_plots.board_coverage(rig, corners, residuals, inliers, regions)),
            f"Rig {name}: every corner detected, where it was in each camera's image, coloured by its residual "
            "(red crosses: dropped as outliers); the outline is the board region.",
            f"board corners of rig {name}",
        ),
        ReportFigure(
            f"threed-{slug}-residuals",
            figure_to_png(
                threed_plots.residual_summary(
                    cameras, residuals, inliers, (board.squares_x - 1, board.squares_y - 1), board.square_mm, edges
                )
            ),
            f"Rig {name}: distribution of the residuals per camera, RMS per corner of the board, and the error of "
            "the board's edges triangulated back.",
            f"residuals of rig {name}",
        ),
        ReportFigure(
            f"threed-{slug}-rig",
            figure_to_png(threed_plots.rig_picture(rig, points)),
            f"Rig {name}: camera centres and viewing directions, and the board's corners triangulated (mm).",
            f"rig {name}",
        ),
    ]
    return text + table(header, rows, "threed") + "".join(f.html() for f in figures), figures


def _polygon_area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def _session(name: str, path: Path, skeleton: Sequence[tuple[str, str]]) -> tuple[str, list[ReportFigure]]:
    metadata = read_metadata3d(path)
    checks = metadata.get("checks", {})
    data = pd.read_parquet(path)
    data["keypoint"] = data["keypoint"].astype(str)
    keypoints = list(dict.fromkeys(data["keypoint"]))
    found = data["n_cameras"] >= 2
    rows = []
    for keypoint in keypoints:
        part = data[data["keypoint"] == keypoint]
        ok = part[part["n_cameras"] >= 2]
        rows.append(
            [
                esc(keypoint),
                fmt(float(ok["reprojection_px"].median()) if len(ok) else None),
                fmt(float(ok["reprojection_px"].quantile(0.9)) if len(ok) else None),
                fmt(float(ok["n_cameras"].mean()) if len(ok) else None),
                f"{1 - len(ok) / max(len(part), 1):.1%}",
                f"{(ok['n_views'] > ok['n_cameras']).mean() if len(ok) else 0:.1%}",
                f"{ok['outside_board'].mean() if len(ok) else 0:.1%}",
            ]
        )
    header = ["keypoint", "reprojection median (px)", "p90 (px)", "cameras used", "no 3D point", "a view left out",
              "outside board region"]  # fmt: skip
    disagree = data[found & (data["n_views"] > data["n_cameras"])]
    worst = (
        disagree.groupby("frame")
        .agg(points=("keypoint", "size"), keypoints=("keypoint", lambda k: ", ".join(sorted(set(k)))),
             cameras=("cameras", lambda c: ", ".join(sorted(set(map(str, c))))))
        .sort_values("points", ascending=False, kind="stable")
        .head(WORST_FRAMES)
    )  # fmt: skip
    worst_rows = [[str(frame), str(r.points), esc(r.keypoints), esc(r.cameras)] for frame, r in worst.iterrows()]
    offsets = checks.get("time_offsets", [])
    offset_rows = [
        [
            esc(" / ".join(p["cameras"])),
            str(p["best_shift"]),
            fmt(p["error_px"]),
            fmt(p["best_error_px"]),
            '<span class="bad">suspected</span>' if p["suspected"] else '<span class="ok">in sync</span>',
        ]
        for p in offsets
    ]
    suspected = [p for p in offsets if p["suspected"]]
    cameras = checks.get("cameras", [])
    text = (
        f"<h3>Session {esc(name)}</h3>\n<p>{len(cameras)} cameras ({esc(', '.join(cameras))}), "
        f"{checks.get('frames', '?')} frames, frame offsets {esc(checks.get('frame_offsets', {}))}; "
        f"{found.mean():.1%} of points triangulated, mean reprojection error "
        f"{fmt(float(data.loc[found, 'reprojection_px'].mean()) if found.any() else None)} px; "
        f"{(data['outside_board'] & found).sum()} points use a view outside its board region. "
        + (
            f'<span class="bad">{len(suspected)} camera pairs fit better shifted in time: check the frame '
            "offsets.</span>"
            if suspected
            else "No camera pair fits better shifted in time."
        )
        + "</p>\n"
    )
    slug = _slug(name)
    figures = [
        ReportFigure(
            f"threed-{slug}-time",
            figure_to_png(threed_plots.session_over_time(data, keypoints, len(cameras))),
            f"Session {name}: per keypoint, the reprojection error of its 3D point and the cameras it was made from, "
            "over time (a drop in cameras used: a view disagreed or was missing).",
            f"reprojection over time, session {name}",
        ),
        ReportFigure(
            f"threed-{slug}-poses",
            figure_to_png(threed_plots.poses_3d(data, keypoints, skeleton)),
            f"Session {name}: a few 3D poses spread over the session (mm), and the path of {keypoints[0]}.",
            f"3D poses, session {name}",
        ),
    ]
    parts = [
        text,
        table(header, rows, "threed"),
        "<h4>Time shifts between cameras</h4><p>A shift s: the second camera's frame t + s fits the first "
        "camera's frame t best (median distance of the points from their epipolar lines).</p>"
        + table(["cameras", "best shift (frames)", "unshifted (px)", "at best shift (px)", ""], offset_rows, "threed"),
        "<h4>Frames where views disagree most</h4>"
        + (
            table(["frame", "points", "keypoints", "cameras used"], worst_rows, "threed")
            if worst_rows
            else "<p>No view was left out.</p>"
        ),
        "".join(f.html() for f in figures),
    ]
    return "\n".join(parts), figures
