"""Triangulating a session: one video per camera, its 2D trajectories, a calibration: 3D trajectories.

A session's videos are synchronised views of one scene (the video sheet's `session` and
`camera` columns). Video frame k of a camera is session frame k - frame_offset (a camera
started `frame_offset` frames before the session's first frame), so the session has as many
frames as its shortest view after its offset. Without offsets the views must be equally long:
unequal lengths are an error, not a guess.

Before anything is triangulated, the calibration is checked against the session: every
camera must be in it, at the size of its video. Instance numbers are taken to be the same
animal in every view (true of single-animal sessions; identities are not matched across views).

The session's checks, kept in the output's metadata for the QC report: per pair of cameras,
the time shift (in frames, within `max_offset_frames`) that best fits the calibration's
epipolar geometry; a shift other than 0 that fits clearly better suggests the videos are not in
sync.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from posecore.errors import InputError
from posecore.threed.camera import rodrigues
from posecore.threed.options import TriangulationConfig
from posecore.threed.refine import refine
from posecore.threed.rig import Rig
from posecore.threed.trajectories import SCHEMA
from posecore.threed.triangulate import triangulate

logger = logging.getLogger(__name__)

OFFSET_IMPROVEMENT = 0.8
"""A time shift is suspected when its median epipolar error is below this fraction of the error unshifted."""


@dataclass(frozen=True)
class View:
    """One camera's video of a session.

    Attributes:
        camera: the camera's name in the calibration.
        video: the video's name (the sheet's `video`).
        trajectories: its 2D trajectory file (`posecore.io.trajectories`).
        offset: frames this camera recorded before the session's first frame.
        size: (width, height) of the video, to check against the calibration; None: not checked.
    """

    camera: str
    video: str
    trajectories: Path
    offset: int = 0
    size: tuple[int, int] | None = None


@dataclass(frozen=True, eq=False)
class SessionViews:
    """The 2D trajectories of a session's views on the session's frames.

    Attributes:
        keypoints: keypoint names (K).
        instances: instance numbers (I).
        frames: int64 (T,) session frame numbers.
        times: float64 (T,) seconds, from the first camera's video.
        pixels: float64 (C, T, I, K, 2); NaN where a view has no point.
        scores: float64 (C, T, I, K).
    """

    keypoints: tuple[str, ...]
    instances: tuple[int, ...]
    frames: np.ndarray
    times: np.ndarray
    pixels: np.ndarray
    scores: np.ndarray


def check_calibration(rig: Rig, views: Sequence[View], calibration: str | Path) -> Rig:
    """The calibration's cameras in the views' order, once it is known to fit them.

    Raises:
        InputError: naming the calibration file and the camera that is missing or of another size.
    """
    names = rig.names
    missing = [v.camera for v in views if v.camera not in names]
    if missing:
        raise InputError(
            calibration,
            f"the calibration has cameras {names}, with no camera {missing} (videos "
            f"{[v.video for v in views if v.camera in missing]}): is it the calibration of another rig?",
        )
    for view in views:
        camera = rig.camera(view.camera)
        if view.size is not None and tuple(view.size) != camera.size:
            raise InputError(
                calibration,
                f"camera {view.camera!r} was calibrated at {camera.size[0]}x{camera.size[1]} pixels, its video "
                f"{view.video} is {view.size[0]}x{view.size[1]}: is it the calibration of another rig?",
            )
    return rig.subset([v.camera for v in views])


def load_views(views: Sequence[View], session: str) -> SessionViews:
    """Read each view's 2D trajectories and put them on the session's frames.

    Raises:
        InputError: views of different lengths without offsets, or with different keypoints.
    """
    tables = []
    for view in views:
        table = pq.read_table(view.trajectories, columns=["frame", "time_s", "instance", "keypoint", "x", "y", "score"])
        tables.append(table.to_pandas())
    lengths = {v.camera: int(t["frame"].max()) + 1 if len(t) else 0 for v, t in zip(views, tables, strict=True)}
    if not any(v.offset for v in views) and len(set(lengths.values())) > 1:
        raise InputError(
            views[0].trajectories,
            f"session {session!r}: mismatched frame counts, the cameras' videos have {lengths} frames; synchronised "
            "views must be equally long (if a camera started early or late, give its frame_offset in the video sheet)",
        )
    n_frames = min(lengths[v.camera] - v.offset for v in views)
    if n_frames <= 0:
        raise InputError(views[0].trajectories, f"session {session!r}: the offsets leave no frame seen by every camera")
    keypoints = [tuple(t["keypoint"].cat.categories if hasattr(t["keypoint"], "cat") else sorted(set(t["keypoint"])))
                 for t in tables]  # fmt: skip
    for view, names in zip(views, keypoints, strict=True):
        if set(names) != set(keypoints[0]):
            raise InputError(
                view.trajectories,
                f"session {session!r}: camera {view.camera!r} has keypoints {list(names)}, camera "
                f"{views[0].camera!r} {list(keypoints[0])}: its views must come from the same model",
            )
    names = keypoints[0]
    instances = tuple(sorted({int(i) for t in tables for i in t["instance"].unique()}))
    c_count, i_count, k_count = len(views), len(instances), len(names)
    pixels = np.full((c_count, n_frames, i_count, k_count, 2), np.nan)
    scores = np.full((c_count, n_frames, i_count, k_count), np.nan)
    times = np.full(n_frames, np.nan)
    key_index = {name: k for k, name in enumerate(names)}
    instance_index = {n: i for i, n in enumerate(instances)}
    for c, (view, table) in enumerate(zip(views, tables, strict=True)):
        t = table["frame"].to_numpy() - view.offset
        ok = (t >= 0) & (t < n_frames)
        t = t[ok]
        i = table["instance"].map(instance_index).to_numpy()[ok]
        k = table["keypoint"].astype(str).map(key_index).to_numpy()[ok]
        pixels[c, t, i, k] = table[["x", "y"]].to_numpy(dtype=np.float64)[ok]
        scores[c, t, i, k] = table["score"].to_numpy(dtype=np.float64)[ok]
        if c == 0:
            times[t] = table["time_s"].to_numpy()[ok]
    return SessionViews(tuple(names), instances, np.arange(n_frames), times, pixels, scores)


def inside_region(region: np.ndarray | None, pixels: np.ndarray) -> np.ndarray:
    """Whether pixels (..., 2) lie inside a convex polygon (N, 2), counter-clockwise in (x, y).

    All True when there is no region; NaN pixels count as inside (they are not used).
    """
    if region is None or len(region) < 3:
        return np.ones(pixels.shape[:-1], dtype=bool)
    a, b = region, np.roll(region, -1, axis=0)
    edge = b - a  # (N, 2)
    rel = pixels[..., None, :] - a  # (..., N, 2)
    cross = edge[:, 0] * rel[..., 1] - edge[:, 1] * rel[..., 0]
    return (cross >= 0).all(axis=-1) | ~np.isfinite(pixels).all(axis=-1)


def scan_offsets(
    rig: Rig, pixels: np.ndarray, scores: np.ndarray, min_score: float, max_lag: int
) -> list[dict[str, Any]]:
    """Per camera pair, the time shift of the second camera that best fits the epipolar geometry.

    Args:
        rig: the cameras, in the order of `pixels`.
        pixels: float64 (C, T, M, 2) each camera's points per frame (M points per frame).
        scores: (C, T, M).
        min_score: points scoring lower are left out.
        max_lag: shifts from -max_lag to max_lag frames are tried.

    Returns:
        One dict per pair: cameras, best shift (frames; the second camera's frame t + shift goes
        with the first's t), median epipolar distance (pixels) unshifted and at the best shift,
        and whether the shift is suspected.
    """
    rays = rig.undistort(pixels)  # (C, T, M, 2)
    rays = np.where((np.nan_to_num(scores) >= min_score)[..., None], rays, np.nan)
    out = []
    t_count = pixels.shape[1]
    for a, b in combinations(range(len(rig.cameras)), 2):
        ca, cb = rig.cameras[a], rig.cameras[b]
        r_ab = rodrigues(cb.rotation) @ rodrigues(ca.rotation).T
        t_ab = cb.translation - r_ab @ ca.translation
        cross = np.array([[0, -t_ab[2], t_ab[1]], [t_ab[2], 0, -t_ab[0]], [-t_ab[1], t_ab[0], 0]])
        essential = cross @ r_ab  # x_b^T E x_a = 0 for the rays of one point
        errors = {}
        for lag in range(-max_lag, max_lag + 1):
            lo, hi = max(0, -lag), min(t_count, t_count - lag)
            if hi - lo < 1:
                continue
            xa = _homogeneous(rays[a, lo:hi])
            xb = _homogeneous(rays[b, lo + lag : hi + lag])
            line_b = xa @ essential.T  # (T', M, 3) epipolar lines in b
            line_a = xb @ essential  # in a
            algebraic = np.abs((xb * line_b).sum(axis=-1))
            distance = 0.5 * (
                algebraic / np.hypot(line_b[..., 0], line_b[..., 1]) * cb.focal
                + algebraic / np.hypot(line_a[..., 0], line_a[..., 1]) * ca.focal
            )
            distance = distance[np.isfinite(distance)]
            if len(distance) >= 10:
                errors[lag] = float(np.median(distance))
        if 0 not in errors:
            continue
        best = min(errors, key=lambda lag: (errors[lag], abs(lag)))
        out.append(
            {
                "cameras": [ca.name, cb.name],
                "best_shift": int(best),
                "error_px": errors[0],
                "best_error_px": errors[best],
                "suspected": bool(best != 0 and errors[best] < OFFSET_IMPROVEMENT * errors[0]),
                "errors_px": {str(lag): round(e, 3) for lag, e in sorted(errors.items())},
            }
        )
    return out


def _homogeneous(rays: np.ndarray) -> np.ndarray:
    return np.concatenate([rays, np.ones((*rays.shape[:-1], 1))], axis=-1)


def triangulate_session(
    rig: Rig,
    views: Sequence[View],
    session: str,
    config: TriangulationConfig,
    skeleton: Sequence[tuple[str, str]] = (),
) -> tuple[pa.Table, dict[str, Any]]:
    """Triangulate a session (see the module docstring).

    Args:
        rig: the calibration, checked with `check_calibration` (cameras in the views' order).
        views: the session's views.
        session: its name, for messages.
        config: the options.
        skeleton: edges by keypoint name, for the refinement's limb lengths.

    Returns:
        The 3D trajectory table (`trajectories.SCHEMA`, frame-major) and the session's checks.
    """
    data = load_views(views, session)
    c_count, t_count, i_count, k_count = data.scores.shape
    pixels = data.pixels.reshape(c_count, -1, 2)
    scores = data.scores.reshape(c_count, -1)
    result = triangulate(rig, pixels, scores, min_score=config.min_score, threshold_px=config.threshold_px)
    points = result.points
    if config.refine:
        index = {name: k for k, name in enumerate(data.keypoints)}
        edges = [(index[a], index[b]) for a, b in skeleton if a in index and b in index]
        weights = np.where(result.used, np.nan_to_num(scores), 0.0).reshape(c_count, t_count, i_count, k_count)
        grid = points.reshape(t_count, i_count, k_count, 3)
        for i in range(i_count):
            grid[:, i] = refine(rig, grid[:, i], data.pixels[:, :, i], weights[:, :, i], edges, config.refinement)
        points = grid.reshape(-1, 3)
        errors = np.linalg.norm(rig.project(points) - pixels, axis=-1)
        result = type(result)(points, np.where(result.seen, errors, np.nan), result.used, result.seen, result.score)
    outside = np.zeros(pixels.shape[1], dtype=bool)
    for c, camera in enumerate(rig.cameras):
        outside |= result.used[c] & ~inside_region(rig.board_region(camera.name), pixels[c])
    names = np.array(rig.names)
    labels = ["+".join(names[column]) for column in result.used.T]
    table = _table(
        data, points, result.reprojection_px, result.n_cameras, result.seen.sum(axis=0), labels, result.score, outside
    )
    checks = {
        "cameras": rig.names,
        "videos": [v.video for v in views],
        "frame_offsets": {v.camera: v.offset for v in views},
        "frames": t_count,
        "time_offsets": scan_offsets(
            rig,
            data.pixels.reshape(c_count, t_count, -1, 2),
            data.scores.reshape(c_count, t_count, -1),
            config.min_score,
            config.max_offset_frames,
        ),
        "views_left_out": {
            name: int((result.seen[c] & ~result.used[c] & np.isfinite(points[:, 0])).sum())
            for c, name in enumerate(rig.names)
        },
    }
    for pair in checks["time_offsets"]:
        if pair["suspected"]:
            logger.warning(
                "session %s: %s and %s fit best with a shift of %d frames (%.1f px instead of %.1f px)",
                session, *pair["cameras"], pair["best_shift"], pair["best_error_px"], pair["error_px"],
            )  # fmt: skip
    return table, checks


def _table(
    data: SessionViews,
    points: np.ndarray,
    reprojection: np.ndarray,
    n_cameras: np.ndarray,
    n_views: np.ndarray,
    labels: list[str],
    score: np.ndarray,
    outside: np.ndarray,
) -> pa.Table:
    t_count, i_count, k_count = len(data.frames), len(data.instances), len(data.keypoints)
    shape = (t_count, i_count, k_count)
    dictionary = sorted(set(labels))
    codes = np.searchsorted(dictionary, labels).astype(np.int16)
    return pa.table(
        {
            "frame": np.broadcast_to(data.frames[:, None, None], shape).ravel(),
            "time_s": np.broadcast_to(data.times[:, None, None], shape).ravel(),
            "instance": np.broadcast_to(np.array(data.instances, np.int16)[None, :, None], shape).ravel(),
            "keypoint": pa.DictionaryArray.from_arrays(
                np.tile(np.arange(k_count, dtype=np.int16), t_count * i_count), pa.array(list(data.keypoints))
            ),
            "x": points[:, 0].astype(np.float32),
            "y": points[:, 1].astype(np.float32),
            "z": points[:, 2].astype(np.float32),
            "reprojection_px": reprojection.astype(np.float32),
            "n_cameras": n_cameras.astype(np.int8),
            "n_views": n_views.astype(np.int8),
            "cameras": pa.DictionaryArray.from_arrays(codes, pa.array(dictionary, pa.string())),
            "score": score.astype(np.float32),
            "outside_board": outside,
        },
        schema=SCHEMA,
    )


def session_metadata(
    calibration: str | Path, views: Sequence[View], rig: Rig, config: TriangulationConfig, checks: dict[str, Any]
) -> dict[str, Any]:
    """The provenance and checks stored with a session's 3D trajectories."""
    import hashlib

    from posecore import __version__
    from posecore.io.trajectories import read_provenance

    sources = {}
    for view in views:
        try:
            sources[view.camera] = {"path": str(view.trajectories), "provenance": read_provenance(view.trajectories)}
        except InputError:
            sources[view.camera] = {"path": str(view.trajectories), "provenance": None}
    return {
        "posecore_version": __version__,
        "calibration": str(calibration),
        "calibration_sha256": hashlib.sha256(Path(calibration).read_bytes()).hexdigest(),
        "frame_of_reference": rig.metadata.get("origin", "as in the calibration"),
        "units": "mm",
        "trajectories2d": sources,
        "config": {**config.__dict__, "refinement": config.refinement.__dict__},
        "checks": checks,
    }


def run_session(
    calibration: Path,
    views: Sequence[View],
    session: str,
    config: TriangulationConfig,
    skeleton: Sequence[tuple[str, str]],
    out: Path,
) -> pa.Table:
    """Check the calibration against the session, triangulate it and write its 3D trajectories.

    What the workflow's `triangulate` rule does: the calibration is read and checked before any
    2D file is, so a calibration of another rig stops the job with a message naming it.
    """
    from posecore.threed.rig import read_calibration
    from posecore.threed.trajectories import write_trajectories3d

    rig = check_calibration(read_calibration(calibration), views, calibration)
    table, checks = triangulate_session(rig, views, session, config, skeleton)
    write_trajectories3d(table, out, session_metadata(calibration, views, rig, config, checks))
    logger.info(
        "session %s: %d frames, %d of %d points triangulated", session, checks["frames"],
        int(table.column("n_cameras").to_numpy().astype(bool).sum()), table.num_rows,
    )  # fmt: skip
    return table
