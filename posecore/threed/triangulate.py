"""Triangulation: 3D points from their 2D views in several calibrated cameras.

`triangulate_linear` is the confidence-weighted direct linear transform (DLT) over every camera
that sees a point, on undistorted, normalised coordinates. `triangulate` makes it robust to a
view that is wrong (a peak on the wrong body part, a left/right swap): for every pair of
cameras that see the point it triangulates the pair, reprojects the point into every camera,
and keeps the hypothesis that the most views agree with (within `threshold_px`; ties go to the
smallest sum of truncated errors, as in MSAC). The point is then triangulated again from the
views that agree with it. With a handful of cameras every pair can be tried, so this is RANSAC
over camera subsets without the random draws: the result does not depend on a seed.

Notes:
    A point is NaN where fewer than two views agree with each other: two cameras that disagree
    cannot say which of them is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from posecore.threed.rig import Rig

CHUNK_POINTS = 65536
"""Points triangulated at once (bounds memory on long videos)."""


def triangulate_linear(projections: np.ndarray, rays: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted DLT of points from normalised coordinates.

    Args:
        projections: float64 (C, 3, 4) [R | t] per camera.
        rays: float64 (C, M, 2) normalised, undistorted coordinates (x, y) of each point in each
            camera; NaN where a camera does not see it.
        weights: float (C, M) weight of each view (a confidence); 0 leaves a view out.

    Returns:
        float64 (M, 3) points; NaN where fewer than two views have a positive weight.
    """
    w = np.where(np.isfinite(rays).all(axis=-1), np.asarray(weights, dtype=np.float64), 0.0)  # (C, M)
    w = np.where(w > 0, w, 0.0)
    uv = np.nan_to_num(rays)  # (C, M, 2)
    # Rows u * P3 - P1 and v * P3 - P2 per camera, weighted: (M, 2C, 4).
    rows = uv[..., None] * projections[:, None, 2:3, :] - projections[:, None, :2, :]  # (C, M, 2, 4)
    rows = rows * w[..., None, None]
    # Scale the world so that the translation column is comparable to the rotation columns.
    scale = max(float(np.abs(projections[:, :, 3]).max()), 1.0)
    rows[..., 3] /= scale
    a = np.moveaxis(rows, 0, 1).reshape(rays.shape[1], -1, 4)  # (M, 2C, 4)
    _, _, vt = np.linalg.svd(a)
    h = vt[:, -1]  # (M, 4) homogeneous (X / scale, 1) up to a factor
    with np.errstate(divide="ignore", invalid="ignore"):
        points = h[:, :3] / h[:, 3:] * scale
    enough = (w > 0).sum(axis=0) >= 2
    return np.where(enough[:, None], points, np.nan)


@dataclass(frozen=True, eq=False)
class Triangulation:
    """Robustly triangulated points and how they were made.

    Attributes:
        points: float64 (M, 3) in the rig's world frame (mm); NaN where no two views agree.
        errors: float64 (C, M) reprojection error of the point in each camera, pixels (NaN where
            the camera has no view of it).
        used: bool (C, M) views the point was triangulated from.
        seen: bool (C, M) views there were (finite, scoring at least the minimum).
        score: float64 (M,) mean score of the views used.
    """

    points: np.ndarray
    errors: np.ndarray
    used: np.ndarray
    seen: np.ndarray
    score: np.ndarray

    @property
    def reprojection_px(self) -> np.ndarray:
        """float64 (M,) mean reprojection error over the views used; NaN where no point."""
        used_errors = np.where(self.used, self.errors, np.nan)
        with np.errstate(invalid="ignore"):
            counts = self.used.sum(axis=0)
            return np.where(counts > 0, np.nansum(np.nan_to_num(used_errors), axis=0) / np.maximum(counts, 1), np.nan)

    @property
    def n_cameras(self) -> np.ndarray:
        """Int (M,) number of views used."""
        return self.used.sum(axis=0)


def triangulate(
    rig: Rig,
    pixels: np.ndarray,
    scores: np.ndarray | None = None,
    *,
    min_score: float = 0.0,
    threshold_px: float = 20.0,
) -> Triangulation:
    """Triangulate points seen by the rig's cameras, robust to wrong views.

    Args:
        rig: the calibrated cameras, in the order of `pixels`.
        pixels: float (C, M, 2) pixel (x, y) of each point in each camera; NaN where unseen.
        scores: float (C, M) confidence of each view (e.g. the 2D model's score); None: all 1.
            Views scoring below `min_score` are left out; the others are weighted by their score.
        min_score: views with a lower score are not used.
        threshold_px: a view agrees with a point when it reprojects within this many pixels.

    Returns:
        The points, per-view errors and which views were used.
    """
    pixels = np.asarray(pixels, dtype=np.float64)
    n_cameras, m = pixels.shape[:2]
    if n_cameras != len(rig.cameras):
        raise ValueError(f"pixels has {n_cameras} cameras, the rig {len(rig.cameras)}")
    scores = np.ones((n_cameras, m)) if scores is None else np.asarray(scores, dtype=np.float64)
    parts = [
        _triangulate_chunk(
            rig, pixels[:, s : s + CHUNK_POINTS], scores[:, s : s + CHUNK_POINTS], min_score, threshold_px
        )
        for s in range(0, max(m, 1), CHUNK_POINTS)
    ]
    return Triangulation(
        points=np.concatenate([p.points for p in parts]),
        errors=np.concatenate([p.errors for p in parts], axis=1),
        used=np.concatenate([p.used for p in parts], axis=1),
        seen=np.concatenate([p.seen for p in parts], axis=1),
        score=np.concatenate([p.score for p in parts]),
    )


def refine_points(
    rig: Rig, points: np.ndarray, pixels: np.ndarray, weights: np.ndarray, iterations: int = 3
) -> np.ndarray:
    """Gauss-Newton steps from `points` (M, 3) towards the least weighted squared pixel error.

    The linear triangulation minimises an algebraic error on normalised coordinates, which
    weighs a camera by its distance to the point; this minimises the reprojection error in
    pixels that the detections' noise is measured in.

    Args:
        rig: the cameras.
        points: float64 (M, 3) starting points (NaN stays NaN).
        pixels: float64 (C, M, 2) the views.
        weights: float (C, M) each view's weight; 0 leaves it out.
        iterations: Gauss-Newton steps.
    """
    w = np.where(np.isfinite(pixels).all(axis=-1), weights, 0.0)[..., None]  # (C, M, 1)
    target = np.nan_to_num(pixels)
    x = points.copy()
    for _ in range(iterations):
        projected = rig.project(x)  # (C, M, 2)
        r = np.nan_to_num(projected - target) * np.sqrt(w)
        jac = np.empty((*r.shape, 3))  # (C, M, 2, 3)
        for k in range(3):
            moved = x.copy()
            moved[:, k] += 1e-3
            jac[..., k] = np.nan_to_num(rig.project(moved) - projected) / 1e-3 * np.sqrt(w)
        a = np.einsum("cmik,cmil->mkl", jac, jac)  # (M, 3, 3)
        b = np.einsum("cmik,cmi->mk", jac, r)  # (M, 3)
        ok = np.isfinite(x[:, 0]) & (np.linalg.cond(a) < 1e12)
        step = np.zeros_like(x)
        step[ok] = np.linalg.solve(a[ok], -b[ok][..., None])[..., 0]
        x = x + step
    return x


def reprojection_errors(rig: Rig, points: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Pixel distances (C, M) between `points` (M, 3) projected into each camera and `pixels` (C, M, 2)."""
    return np.linalg.norm(rig.project(points) - pixels, axis=-1)


def _triangulate_chunk(
    rig: Rig, pixels: np.ndarray, scores: np.ndarray, min_score: float, threshold_px: float
) -> Triangulation:
    projections = rig.projections
    rays = rig.undistort(pixels)  # (C, M, 2)
    seen = np.isfinite(rays).all(axis=-1) & np.isfinite(scores) & (scores >= min_score)  # (C, M)
    weights = np.where(seen, np.maximum(np.nan_to_num(scores), 1e-6), 0.0)
    n_cameras, m = seen.shape
    if n_cameras > 2:
        best_count = np.zeros(m, dtype=np.int64)
        best_cost = np.full(m, np.inf)
        agree = np.zeros((n_cameras, m), dtype=bool)
        for a, b in combinations(range(n_cameras), 2):
            pair = np.zeros((n_cameras, m))
            pair[[a, b]] = weights[[a, b]]
            hypothesis = triangulate_linear(projections, rays, pair)
            errors = reprojection_errors(rig, hypothesis, pixels)
            inlier = seen & (errors < threshold_px)
            count = inlier.sum(axis=0)
            cost = np.where(seen, np.minimum(np.nan_to_num(errors, nan=threshold_px), threshold_px), 0).sum(axis=0)
            better = np.isfinite(hypothesis[:, 0]) & (
                (count > best_count) | ((count == best_count) & (cost < best_cost))
            )
            best_count = np.where(better, count, best_count)
            best_cost = np.where(better, cost, best_cost)
            agree = np.where(better, inlier, agree)
        used = agree & (best_count >= 2)
        points = triangulate_linear(projections, rays, np.where(used, weights, 0.0))
        # Views that agree with the refitted point join it (a hypothesis from a noisy pair can miss one).
        errors = reprojection_errors(rig, points, pixels)
        grown = seen & (errors < threshold_px)
        regrow = (grown.sum(axis=0) > used.sum(axis=0)) & np.isfinite(points[:, 0])
        used = np.where(regrow, grown, used)
        points = np.where(regrow[:, None], triangulate_linear(projections, rays, np.where(used, weights, 0.0)), points)
    else:
        used = seen.copy()
        points = triangulate_linear(projections, rays, weights)
    points = refine_points(rig, points, pixels, np.where(used, weights, 0.0))
    errors = np.where(seen, reprojection_errors(rig, points, pixels), np.nan)
    if n_cameras == 2:
        used &= (errors < threshold_px).all(axis=0)
    used &= np.isfinite(points[:, 0])
    points = np.where(used.sum(axis=0)[:, None] >= 2, points, np.nan)
    with np.errstate(invalid="ignore"):
        score = np.where(used, scores, 0).sum(axis=0) / used.sum(axis=0)
    return Triangulation(points=points, errors=errors, used=used, seen=seen, score=score)
