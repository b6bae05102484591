"""Calibrating a rig of N >= 2 cameras from the board corners they saw.

1. Each camera's lens on its own: OpenCV's `calibrateCamera` (or `fisheye.calibrate`) over up
   to `max_intrinsic_views` of its views, square pixels, the distortion terms of
   `CalibrationConfig.distortion`; then the board's pose in each of its views (`solvePnP`).
2. The cameras joined into one rig through the pairs that saw the board in the same frames:
   each pair's relative pose is the medoid of the poses its shared frames give, and the
   cameras are placed along the maximum spanning tree of shared frames, from the reference
   camera. A camera the tree does not reach is an error that names it and lists the pairs.
3. One bundle adjustment over every camera and board pose (`posecore.threed.bundle`), first
   with a robust loss; corners further than `outlier_sigmas` robust standard deviations (and
   at least `min_outlier_px`) from their fit are dropped, and the adjustment is run again.
4. The world frame is the reference camera's, or with `origin: board` the board's in the frame
   seen by most cameras. Units are the board's: millimetres.

Every step is deterministic (no random draws; ties broken by camera and frame order), so two
runs on the same detections write the same calibration file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
from scipy.spatial import ConvexHull
from threadpoolctl import threadpool_limits

from posecore import __version__
from posecore.errors import InputError
from posecore.threed.boards import Board
from posecore.threed.bundle import Observations, adjust, camera_vector, residuals, vector_camera
from posecore.threed.camera import Camera, rodrigues, rotation_vector, undistort
from posecore.threed.detection import Detections
from posecore.threed.options import DISTORTION_TERMS, CalibrationConfig
from posecore.threed.rig import Rig
from posecore.threed.triangulate import triangulate_linear

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Calibration:
    """A calibrated rig and how well it fits the corners it was calibrated from.

    Attributes:
        rig: the cameras in one world frame, millimetres.
        board: the board.
        detections: the corners found, per camera and frame.
        residuals: float64 (C, F, N, 2) detected minus reprojected corner, pixels; NaN where not detected.
        inliers: bool (C, F, N) corners the final adjustment used.
        poses: float64 (F, 6) the board's pose (Rodrigues rotation, translation) board to world; NaN
            for frames no camera saw well enough.
        summary: per-camera and overall figures (`calibration_summary`).
    """

    rig: Rig
    board: Board
    detections: Detections
    residuals: np.ndarray
    inliers: np.ndarray
    poses: np.ndarray
    summary: dict[str, Any] = field(default_factory=dict)

    def board_points(self) -> np.ndarray:
        """float64 (F, N, 3) the board model's corners at each adjusted board pose, world mm."""
        r = rodrigues(np.nan_to_num(self.poses[:, :3]))  # (F, 3, 3)
        points = np.einsum("fij,nj->fni", r, self.board.object_points) + self.poses[:, None, 3:]
        return np.where(np.isfinite(self.poses[:, :1, None]), points, np.nan)


def calibrate(board: Board, detections: Detections, config: CalibrationConfig) -> Calibration:
    """Calibrate the rig that made `detections` (see the module docstring).

    The linear algebra runs on one thread, so that the same detections give the same bits on
    any machine (a multi-threaded BLAS sums in an order that depends on its thread count).

    Raises:
        InputError: a camera that saw the board too rarely, or cameras that cannot be joined.
    """
    import cv2

    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with threadpool_limits(1):
            return _calibrate(board, detections, config)
    finally:
        cv2.setNumThreads(threads)


def _calibrate(board: Board, detections: Detections, config: CalibrationConfig) -> Calibration:
    names = list(detections.cameras)
    reference = config.reference_camera or names[0]
    if reference not in names:
        raise InputError(reference, f"reference camera {reference!r} is not one of the rig's cameras {names}")
    seen = detections.seen(config.min_corners)  # (C, F)
    for c, name in enumerate(names):
        if seen[c].sum() < 3:
            source = detections.sources[c][0] if detections.sources[c] else name
            raise InputError(
                source,
                f"camera {name!r}: the board (at least {config.min_corners} corners) was found in "
                f"{int(seen[c].sum())} of its {len(detections.frames)} calibration frames; at least 3 are needed "
                "to calibrate its lens",
            )
    lenses = [_lens(board, detections, c, seen[c], config) for c in range(len(names))]
    views = np.full((len(names), len(detections.frames), 6), np.nan)  # board to camera, per view
    for c, camera in enumerate(lenses):
        for f in np.flatnonzero(seen[c]):
            views[c, f] = _board_pose(board, camera, detections.corners[c, f])
    extrinsics = _join(names, names.index(reference), views, seen)
    cameras = [lens.with_pose(extrinsics[c, :3], extrinsics[c, 3:]) for c, lens in enumerate(lenses)]
    poses = _initial_poses(cameras, views, detections, seen)
    obs_index, obs = _observations(board, detections, seen, poses)
    free = _free_parameters(cameras, names.index(reference), config)
    vectors = np.stack([camera_vector(c) for c in cameras])
    vectors, poses = adjust(vectors, poses, obs, fisheye=config.fisheye, free_camera=free, robust_px=1.0)
    error = np.linalg.norm(residuals(vectors, poses, obs, config.fisheye), axis=1)
    sigma = np.median(error) / np.sqrt(2 * np.log(2))  # a 2D Gaussian's sigma from its median radius
    threshold = max(config.outlier_sigmas * sigma, config.min_outlier_px)
    keep = error < threshold
    logger.info("dropping %d of %d corners further than %.2f px from the fit", (~keep).sum(), len(keep), threshold)
    kept = Observations(obs.camera[keep], obs.frame[keep], obs.board[keep], obs.pixels[keep])
    vectors, poses = adjust(vectors, poses, kept, fisheye=config.fisheye, free_camera=free)
    cameras = [vector_camera(v, like) for v, like in zip(vectors, cameras, strict=True)]
    if config.origin == "board":
        cameras, poses = _board_origin(cameras, poses, seen)
    all_residuals = residuals(np.stack([camera_vector(c) for c in cameras]), poses, obs, config.fisheye)
    res = np.full(detections.corners.shape, np.nan)
    res[obs_index] = all_residuals
    inliers = np.zeros(detections.corners.shape[:3], dtype=bool)
    inliers[tuple(i[keep] for i in obs_index)] = True
    seen_any = np.zeros(len(detections.frames), dtype=bool)
    seen_any[obs.frame] = True
    poses[~seen_any] = np.nan
    rig = Rig(tuple(cameras))
    calibration = Calibration(rig, board, detections, -res, inliers, poses)
    summary = calibration_summary(calibration, threshold, config)
    metadata = {
        "adjusted": True,
        "error": summary["rms_px"],
        "units": "mm",
        "origin": "board" if config.origin == "board" else f"camera {reference}",
        "posecore_version": __version__,
        "board": {k: v for k, v in board.__dict__.items()},
        "board_region": {name: _region(inliers[c], detections.corners[c]) for c, name in enumerate(names)},
    }
    return Calibration(Rig(tuple(cameras), metadata), board, detections, -res, inliers, poses, summary)


def calibration_summary(calibration: Calibration, threshold_px: float, config: CalibrationConfig) -> dict[str, Any]:
    """The calibration's figures, as summary.json has them.

    RMS reprojection error (over all corners and over the inliers) overall and per camera, the
    corners dropped, and the board's edges triangulated back (errors in mm).
    """
    edges = board_edge_errors(calibration.rig, calibration.board, calibration.detections.corners)
    overall, cameras = residual_figures(calibration.residuals, calibration.inliers)
    for camera, figures in zip(calibration.rig.cameras, cameras, strict=True):
        figures["focal_px"] = camera.focal
    return {
        **overall,
        "outlier_threshold_px": float(threshold_px),
        "edge_error_median_mm": float(np.median(edges)) if len(edges) else float("nan"),
        "edge_error_p90_mm": float(np.percentile(edges, 90)) if len(edges) else float("nan"),
        "edges": len(edges),
        "cameras": dict(zip(calibration.rig.names, cameras, strict=True)),
        "config": dict(config.__dict__),
    }


def residual_figures(residuals: np.ndarray, inliers: np.ndarray) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The true RMS reprojection error over all corners detected and over those kept, overall and per camera.

    The root mean square of the residual vectors' lengths, sqrt(mean(dx^2 + dy^2)) (not divided
    by the number of coordinates, nor averaged per image first).

    Args:
        residuals: float64 (C, F, N, 2) detected minus reprojected corners; NaN where not detected.
        inliers: bool (C, F, N) corners the calibration kept.

    Returns:
        The overall figures (rms_px, rms_all_px, corners, dropped), and per camera the same with frames.
    """
    norms = np.linalg.norm(residuals, axis=-1)  # (C, F, N)
    detected = np.isfinite(norms)

    def figures(norm: np.ndarray, found: np.ndarray, kept: np.ndarray) -> dict[str, Any]:
        return {
            "rms_px": float(np.sqrt(np.mean(norm[kept] ** 2))) if kept.any() else float("nan"),
            "rms_all_px": float(np.sqrt(np.mean(norm[found] ** 2))) if found.any() else float("nan"),
            "corners": int(kept.sum()),
            "dropped": int((found & ~kept).sum()),
        }

    per_camera = [
        {**figures(norms[c], detected[c], inliers[c]), "frames": int(inliers[c].any(axis=-1).sum())}
        for c in range(len(norms))
    ]
    return figures(norms, detected, inliers), per_camera


def board_edge_errors(rig: Rig, board: Board, corners: np.ndarray, min_cameras: int = 2) -> np.ndarray:
    """The board's edges triangulated back: their length's error in mm.

    |length - square_mm| of every edge between neighbouring corners that at least `min_cameras`
    cameras saw at both ends, over all frames.

    Args:
        rig: the calibration to check.
        board: the board (its square size is the true edge length).
        corners: float64 (C, F, N, 2) detected corners, in the rig's camera order.
        min_cameras: views needed at each end.
    """
    c, f, n = corners.shape[:3]
    flat = corners.reshape(c, f * n, 2)
    visible = np.isfinite(flat).all(axis=-1)
    points = triangulate_linear(rig.projections, rig.undistort(flat), visible.astype(float))  # (F*N, 3)
    points[visible.sum(axis=0) < min_cameras] = np.nan
    points = points.reshape(f, n, 3)
    pairs = board.neighbour_pairs()
    lengths = np.linalg.norm(points[:, pairs[:, 0]] - points[:, pairs[:, 1]], axis=-1).ravel()
    lengths = lengths[np.isfinite(lengths)]
    return np.abs(lengths - board.square_mm)


def _lens(board: Board, detections: Detections, c: int, seen: np.ndarray, config: CalibrationConfig) -> Camera:
    """One camera's intrinsics from OpenCV, over up to `max_intrinsic_views` evenly spread views."""
    import cv2

    frames = np.flatnonzero(seen)
    spread = np.linspace(0, len(frames) - 1, min(len(frames), config.max_intrinsic_views)).round().astype(int)
    frames = frames[np.unique(spread)]
    objects, images = [], []
    for f in frames:
        ok = np.isfinite(detections.corners[c, f, :, 0])
        objects.append(board.object_points[ok].astype(np.float32))
        images.append(detections.corners[c, f, ok].astype(np.float32))
    width, height = detections.sizes[c]
    name = detections.cameras[c]
    guess = np.array([[1.0, 0, (width - 1) / 2], [0, 1.0, (height - 1) / 2], [0, 0, 1]])
    criteria = (cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 100, 1e-9)
    if config.fisheye:
        flags = cv2.fisheye.CALIB_RECOMPUTE_EXTRINSIC | cv2.fisheye.CALIB_FIX_SKEW
        if config.fix_principal_point:
            flags |= cv2.fisheye.CALIB_FIX_PRINCIPAL_POINT
        guess[0, 0] = guess[1, 1] = max(width, height) / 2
        flags |= cv2.fisheye.CALIB_USE_INTRINSIC_GUESS
        try:
            _, matrix, dist, _, _ = cv2.fisheye.calibrate(
                [o[None].astype(np.float64) for o in objects],
                [i[None].astype(np.float64) for i in images],
                (width, height),
                guess,
                np.zeros(4),
                flags=flags,
                criteria=criteria,
            )
        except cv2.error as error:
            raise InputError(name, f"camera {name!r}: OpenCV's fisheye calibration failed ({error})") from None
    else:
        flags = cv2.CALIB_FIX_ASPECT_RATIO
        terms = DISTORTION_TERMS[config.distortion]
        for flag, free in zip(("FIX_K1", "FIX_K2", "ZERO_TANGENT_DIST", None, "FIX_K3"), terms, strict=True):
            if flag and not free:
                flags |= getattr(cv2, f"CALIB_{flag}")
        if config.fix_principal_point:
            flags |= cv2.CALIB_FIX_PRINCIPAL_POINT
        _, matrix, dist, _, _ = cv2.calibrateCamera(
            objects, images, (width, height), guess, np.zeros(5), flags=flags, criteria=criteria
        )
    matrix = np.asarray(matrix, dtype=np.float64)
    focal = (matrix[0, 0] + matrix[1, 1]) / 2
    matrix = np.array([[focal, 0.0, matrix[0, 2]], [0.0, focal, matrix[1, 2]], [0, 0, 1.0]])
    dist = np.asarray(dist, dtype=np.float64).reshape(-1)[: 4 if config.fisheye else 5]
    logger.info("%s: initial focal length %.1f px from %d views", name, focal, len(frames))
    return Camera(name, (width, height), matrix, dist, fisheye=config.fisheye)


def _board_pose(board: Board, camera: Camera, corners: np.ndarray) -> np.ndarray:
    """The board's pose (rotation, translation), board to camera, from one view; NaN if it fails."""
    import cv2

    ok = np.isfinite(corners[:, 0])
    rays = undistort(corners[ok], camera.matrix, camera.distortion, camera.fisheye)
    good = np.isfinite(rays).all(axis=1)
    if good.sum() < 4:
        return np.full(6, np.nan)
    found, rvec, tvec = cv2.solvePnP(
        board.object_points[ok][good], rays[good], np.eye(3), None, flags=cv2.SOLVEPNP_IPPE
    )
    if not found:
        return np.full(6, np.nan)
    return np.concatenate([np.asarray(rvec, float).ravel(), np.asarray(tvec, float).ravel()])


def _compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pose a after b (both (..., 6) rotation vector and translation): x -> R_a (R_b x + t_b) + t_a."""
    ra, rb = rodrigues(a[..., :3]), rodrigues(b[..., :3])
    rotation = rotation_vector(ra @ rb)
    translation = np.einsum("...ij,...j->...i", ra, b[..., 3:]) + a[..., 3:]
    return np.concatenate([rotation, translation], axis=-1)


def _invert(a: np.ndarray) -> np.ndarray:
    """The inverse of poses (..., 6)."""
    rt = np.swapaxes(rodrigues(a[..., :3]), -1, -2)
    return np.concatenate([rotation_vector(rt), -np.einsum("...ij,...j->...i", rt, a[..., 3:])], axis=-1)


def _medoid(poses: np.ndarray) -> np.ndarray:
    """The pose (of (K, 6)) closest to all others: rotation angle in degrees plus translation / 10 mm."""
    r = rodrigues(poses[:, :3])  # (K, 3, 3)
    cos = (np.einsum("aij,bij->ab", r, r) - 1) / 2  # trace(Ra^T Rb) = 1 + 2 cos(angle)
    angle = np.degrees(np.arccos(np.clip(cos, -1, 1)))
    shift = np.linalg.norm(poses[:, None, 3:] - poses[None, :, 3:], axis=-1)
    return poses[int(np.argmin(np.median(angle + shift / 10.0, axis=1)))]


def _join(names: list[str], reference: int, views: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Each camera's pose, world (the reference camera's frame) to camera.

    Cameras are placed along the maximum spanning tree of frames shared by pairs of cameras.

    Returns:
        float64 (C, 6) world to camera.

    Raises:
        InputError: cameras the tree does not reach, naming them and the pairs' shared frames.
    """
    n = len(names)
    usable = seen & np.isfinite(views[..., 0])
    shared = np.zeros((n, n), dtype=int)
    for a, b in combinations(range(n), 2):
        shared[a, b] = shared[b, a] = int((usable[a] & usable[b]).sum())
    pose = np.full((n, 6), np.nan)
    pose[reference] = 0.0
    placed = {reference}
    while len(placed) < n:
        candidates = [(shared[a, b], -b, -a) for a in sorted(placed) for b in range(n) if b not in placed]
        count, minus_b, minus_a = max(candidates)
        if count == 0:
            missing = [names[b] for b in range(n) if b not in placed]
            pairs = ", ".join(f"{names[a]}-{names[b]}: {shared[a, b]}" for a, b in combinations(range(n), 2))
            raise InputError(
                ", ".join(missing),
                f"cameras {missing} cannot be joined to the rig: none of them saw the board in a frame that "
                f"cameras {[names[p] for p in sorted(placed)]} saw it too (frames each pair shares: {pairs}); "
                "record calibration frames where the board is in view of both groups at once",
            )
        a, b = -minus_a, -minus_b
        frames = np.flatnonzero(usable[a] & usable[b])
        relative = _compose(views[b, frames], _invert(views[a, frames]))  # camera a to camera b, per frame
        pose[b] = _compose(_medoid(relative), pose[a])
        placed.add(b)
        logger.info("joined %s to %s through %d shared frames", names[b], names[a], count)
    return pose


def _initial_poses(cameras: list[Camera], views: np.ndarray, detections: Detections, seen: np.ndarray) -> np.ndarray:
    """Each frame's board pose in the world, from the camera that saw most of its corners."""
    counts = np.where(seen, np.isfinite(detections.corners[..., 0]).sum(axis=-1), -1)  # (C, F)
    counts = np.where(np.isfinite(views[..., 0]), counts, -1)
    poses = np.full((len(detections.frames), 6), np.nan)
    for f in range(len(detections.frames)):
        c = int(np.argmax(counts[:, f]))
        if counts[c, f] >= 0:
            camera = np.concatenate([cameras[c].rotation, cameras[c].translation])
            poses[f] = _compose(_invert(camera), views[c, f])
    return poses


def _observations(
    board: Board, detections: Detections, seen: np.ndarray, poses: np.ndarray
) -> tuple[tuple[np.ndarray, ...], Observations]:
    """The corners of usable views as observation rows, and their (camera, frame, corner) indices."""
    use = seen[..., None] & np.isfinite(detections.corners[..., 0]) & np.isfinite(poses[None, :, :1])
    c, f, k = np.nonzero(use)  # C-order: camera, frame, corner
    return (c, f, k), Observations(c, f, board.object_points[k], detections.corners[c, f, k])


def _free_parameters(cameras: list[Camera], reference: int, config: CalibrationConfig) -> np.ndarray:
    """Bool (C, P): which of each camera's `camera_vector` entries the adjustment may change."""
    n_distortion = 4 if config.fisheye else 5
    terms = (True,) * 4 if config.fisheye else DISTORTION_TERMS[config.distortion]
    row = np.concatenate([[True] * 6, [True], [not config.fix_principal_point] * 2, terms])
    free = np.tile(row, (len(cameras), 1))
    free[reference, :6] = False
    assert free.shape[1] == 9 + n_distortion
    return free


def _board_origin(cameras: list[Camera], poses: np.ndarray, seen: np.ndarray) -> tuple[list[Camera], np.ndarray]:
    """Move the world frame onto the board in the frame seen by most cameras (the first of ties)."""
    f0 = int(np.argmax(np.where(np.isfinite(poses[:, 0]), seen.sum(axis=0), -1)))
    origin = poses[f0]  # board to world
    moved = [c.with_pose(*np.split(_compose(np.concatenate([c.rotation, c.translation]), origin), 2)) for c in cameras]
    return moved, _compose(_invert(origin), poses)


def _region(inliers: np.ndarray, corners: np.ndarray) -> list[list[float]]:
    """The convex hull (vertices, counter-clockwise in the image) of one camera's inlier corners."""
    points = corners[inliers]
    if len(points) < 3:
        return []
    hull = ConvexHull(points)
    return [[round(float(x), 2), round(float(y), 2)] for x, y in points[hull.vertices]]
