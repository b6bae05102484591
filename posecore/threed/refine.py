"""Optional spatiotemporal refinement of triangulated keypoints (off by default).

Given the robust triangulation of every frame, this moves all of one animal's 3D keypoints at
once to minimise, in the least-squares sense:

- the reprojection error of the views used, in pixels over `reprojection_px`, weighted by
  their scores, under a soft-L1 loss (a view that is still wrong pulls less);
- the acceleration of each keypoint, (X[t+1] - 2 X[t] + X[t-1]) over `smooth_mm`;
- the deviation of each skeleton edge from its median length over the session, over `limb_mm`.

Small `smooth_mm` or `limb_mm` trust the priors more. Points that are NaN (no two views
agreed) stay NaN, and a keypoint is only smoothed across frames where it exists on both sides.
The problem is solved by Gauss-Newton with iterative reweighting, on a sparse Jacobian with a
sparse direct solver (SuperLU), in chunks of `chunk_frames` frames that overlap by
`overlap_frames`. benchmarks/threed.py measures whether it helps (benchmarks/RESULTS.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.sparse import coo_matrix, identity
from scipy.sparse.linalg import spsolve

from posecore.threed.options import RefineConfig
from posecore.threed.rig import Rig


def refine(
    rig: Rig,
    points: np.ndarray,
    pixels: np.ndarray,
    weights: np.ndarray,
    edges: Sequence[tuple[int, int]],
    config: RefineConfig,
) -> np.ndarray:
    """Refine one animal's keypoints over time.

    Args:
        rig: the cameras.
        points: float64 (T, K, 3) triangulated keypoints (NaN where none).
        pixels: float64 (C, T, K, 2) their views.
        weights: float (C, T, K) weight of each view (its score where it was used, else 0).
        edges: skeleton edges as keypoint index pairs.
        config: the weights of the terms.

    Returns:
        float64 (T, K, 3) refined keypoints.
    """
    n_frames = len(points)
    lengths = np.array(
        [np.nanmedian(np.linalg.norm(points[:, a] - points[:, b], axis=-1)) if n_frames else np.nan for a, b in edges]
    )
    out = points.copy()
    step = config.chunk_frames - 2 * config.overlap_frames
    for start in range(0, n_frames, step):
        lo, hi = max(start - config.overlap_frames, 0), min(start + step + config.overlap_frames, n_frames)
        solved = _refine_chunk(rig, points[lo:hi], pixels[:, lo:hi], weights[:, lo:hi], edges, lengths, config)
        out[start : min(start + step, n_frames)] = solved[start - lo : start - lo + step]
    return out


def _refine_chunk(
    rig: Rig,
    points: np.ndarray,
    pixels: np.ndarray,
    weights: np.ndarray,
    edges: Sequence[tuple[int, int]],
    lengths: np.ndarray,
    config: RefineConfig,
) -> np.ndarray:
    t, k = points.shape[:2]
    exists = np.isfinite(points).all(axis=-1)  # (T, K)
    index = np.full((t, k), -1)
    index[exists] = np.arange(exists.sum())
    n = int(exists.sum())
    if n == 0:
        return points
    x = points[exists].copy()  # (n, 3)
    w = np.where(np.isfinite(pixels).all(axis=-1), weights, 0.0)[:, exists]  # (C, n)
    target = np.nan_to_num(pixels[:, exists])  # (C, n, 2)
    # Acceleration triples (t-1, t, t+1) of a keypoint that exists in all three; limb pairs in a frame.
    triples = (
        np.stack([index[:-2].ravel(), index[1:-1].ravel(), index[2:].ravel()], axis=1)
        if t >= 3
        else np.zeros((0, 3), int)
    )
    triples = triples[(triples >= 0).all(axis=1)]
    limbs = []
    if config.limb_mm > 0:
        for e, (a, b) in enumerate(edges):
            if np.isfinite(lengths[e]):
                ok = exists[:, a] & exists[:, b]
                limbs.append(np.stack([index[ok, a], index[ok, b], np.full(ok.sum(), e)], axis=1))
    limbs = np.concatenate(limbs) if limbs else np.zeros((0, 3), int)
    for _ in range(config.iterations):
        rows, cols, vals, residual = [], [], [], []
        # Reprojection: (C, n, 2) residuals, numerical derivatives per point.
        projected = rig.project(x)
        r = (projected - target) / config.reprojection_px
        norm = np.linalg.norm(np.nan_to_num(r), axis=-1)
        scale = np.sqrt(w / np.sqrt(1 + norm**2))  # IRLS weight of soft-L1, times the view's weight
        r = np.nan_to_num(r) * scale[..., None]
        jac = np.empty((*r.shape, 3))
        for d in range(3):
            moved = x.copy()
            moved[:, d] += 1e-3
            jac[..., d] = np.nan_to_num((rig.project(moved) - projected) / 1e-3 / config.reprojection_px)
        jac *= scale[..., None, None]
        c_count = r.shape[0]
        row = np.arange(c_count * n * 2).reshape(c_count, n, 2)
        rows.append(np.repeat(row[..., None], 3, axis=-1).ravel())
        cols.append(np.broadcast_to((np.arange(n)[:, None] * 3 + np.arange(3))[None, :, None, :], jac.shape).ravel())
        vals.append(jac.ravel())
        residual.append(r.ravel())
        offset = c_count * n * 2
        # Smoothness: 3 residuals per triple, linear in x.
        if len(triples):
            acc = (x[triples[:, 2]] - 2 * x[triples[:, 1]] + x[triples[:, 0]]) / config.smooth_mm  # (S, 3)
            row = offset + np.arange(acc.size).reshape(-1, 3)
            for j, coefficient in enumerate((1.0, -2.0, 1.0)):
                rows.append(row.ravel())
                cols.append((triples[:, j, None] * 3 + np.arange(3)).ravel())
                vals.append(np.full(acc.size, coefficient / config.smooth_mm))
            residual.append(acc.ravel())
            offset += acc.size
        if len(limbs):
            delta = x[limbs[:, 0]] - x[limbs[:, 1]]
            length = np.maximum(np.linalg.norm(delta, axis=1), 1e-9)
            unit = delta / length[:, None] / config.limb_mm
            row = offset + np.arange(len(limbs))
            for j, sign in ((0, 1.0), (1, -1.0)):
                rows.append(np.repeat(row, 3))
                cols.append((limbs[:, j, None] * 3 + np.arange(3)).ravel())
                vals.append((sign * unit).ravel())
            residual.append((length - lengths[limbs[:, 2]]) / config.limb_mm)
            offset += len(limbs)
        jmat = coo_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(offset, 3 * n)
        ).tocsc()
        gradient = jmat.T @ np.concatenate(residual)
        hessian = (jmat.T @ jmat + 1e-9 * identity(3 * n)).tocsc()
        x = x - spsolve(hessian, gradient).reshape(n, 3)
    out = points.copy()
    out[exists] = x
    return out
