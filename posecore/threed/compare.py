"""Comparing a calibration or 3D points with a ground truth in another frame of reference.

A calibration is defined up to the choice of world frame, so it is compared with the truth
after the similarity transform (rotation, translation, scale) that best maps its points onto
the true ones (Umeyama's least-squares solution). posecore calibrates in millimetres from the
board's size, so the scale found should be 1 to within the calibration's error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posecore.threed.rig import Rig


@dataclass(frozen=True)
class Similarity:
    """x -> scale * R x + t."""

    rotation: np.ndarray
    translation: np.ndarray
    scale: float

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Transform points (..., 3)."""
        return self.scale * np.asarray(points) @ self.rotation.T + self.translation


def similarity(source: np.ndarray, target: np.ndarray) -> Similarity:
    """The similarity that maps `source` (M, 3) onto `target` (M, 3) best in least squares (Umeyama 1991).

    Rows with a NaN in either are left out.
    """
    ok = np.isfinite(source).all(axis=1) & np.isfinite(target).all(axis=1)
    a, b = np.asarray(source, float)[ok], np.asarray(target, float)[ok]
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    da, db = a - mean_a, b - mean_b
    u, s, vt = np.linalg.svd(db.T @ da / len(a))
    d = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[2] = -1
    rotation = u @ np.diag(d) @ vt
    scale = float((s * d).sum() / (da**2).sum(axis=1).mean())
    return Similarity(rotation, mean_b - scale * rotation @ mean_a, scale)


def rig_errors(estimate: Rig, truth: Rig, transform: Similarity) -> dict[str, dict[str, float]]:
    """Per camera: centre error (mm), orientation error (degrees) and relative focal error.

    `estimate` is compared with `truth` once `transform` has mapped the estimate's world onto the
    truth's.
    """
    out = {}
    for mine, true in zip(estimate.cameras, truth.cameras, strict=True):
        centre = transform(mine.centre)
        # The estimate's world-to-camera rotation, seen from the truth's world: R_mine S^T.
        rotation = mine.rotation_matrix @ transform.rotation.T
        cos = (np.trace(rotation @ true.rotation_matrix.T) - 1) / 2
        out[true.name] = {
            "centre_mm": float(np.linalg.norm(centre - true.centre)),
            "angle_deg": float(np.degrees(np.arccos(np.clip(cos, -1, 1)))),
            "focal_rel": float(mine.focal / true.focal - 1),
        }
    return out
