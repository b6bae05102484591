"""The camera model: OpenCV's pinhole with radial-tangential distortion, or its fisheye model.

Coordinates follow docs/design.md: pixels with x the column, y the row and the centre of the
top-left pixel at (0, 0), which is also OpenCV's convention. A camera maps a world point X
(millimetres) to its own frame by x_c = R X + t (R from the Rodrigues vector `rotation`), then
to normalised coordinates (a, b) = (x_c[0] / x_c[2], x_c[1] / x_c[2]), distorts them and applies
the camera matrix. The distortion coefficients are OpenCV's: (k1, k2, p1, p2, k3) for the
pinhole model, (k1, k2, k3, k4) for the fisheye (equidistant) one, so a `Camera` reads and
writes Anipose's calibration files unchanged.

Projection and undistortion are written in numpy rather than called from OpenCV, so that they
vectorise over cameras and points for the bundle adjustment and triangulation, and give the
same numbers whichever OpenCV version is installed (tests check them against cv2.projectPoints).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

UNDISTORT_ITERATIONS = 30
"""Most Newton steps when inverting the distortion; it converges in a few where the model is monotone."""


def rodrigues(rvec: np.ndarray) -> np.ndarray:
    """Rotation matrices from Rodrigues vectors: (..., 3) -> (..., 3, 3)."""
    rvec = np.asarray(rvec, dtype=np.float64)
    theta = np.linalg.norm(rvec, axis=-1)[..., None, None]  # (..., 1, 1)
    k = rvec / np.where(theta[..., 0] > 1e-12, theta[..., 0], 1.0)  # (..., 3) unit axis (any when theta ~ 0)
    kx, ky, kz = k[..., 0], k[..., 1], k[..., 2]
    zero = np.zeros_like(kx)
    skew = np.stack([zero, -kz, ky, kz, zero, -kx, -ky, kx, zero], axis=-1).reshape((*k.shape[:-1], 3, 3))
    eye = np.broadcast_to(np.eye(3), skew.shape)
    small = theta < 1e-12
    sin, cos = np.sin(theta), np.cos(theta)
    rotation = eye + sin * skew + (1 - cos) * (skew @ skew)
    # First order near the identity: R = I + [r]x.
    return np.where(small, eye + _skew(rvec), rotation)


def _skew(v: np.ndarray) -> np.ndarray:
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    zero = np.zeros_like(x)
    return np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape((*v.shape[:-1], 3, 3))


def rotation_vector(matrix: np.ndarray) -> np.ndarray:
    """Rodrigues vectors of rotation matrices: (..., 3, 3) -> (..., 3), the inverse of `rodrigues`.

    Goes through the quaternion, which stays accurate near 0 and 180 degrees.
    """
    q = quaternion(matrix)  # (..., 4) w, x, y, z with w >= 0
    norm = np.linalg.norm(q[..., 1:], axis=-1)
    angle = 2 * np.arctan2(norm, q[..., 0])
    scale = np.where(norm > 1e-15, angle / np.where(norm > 1e-15, norm, 1.0), 2.0)
    return q[..., 1:] * scale[..., None]


def quaternion(matrix: np.ndarray) -> np.ndarray:
    """Unit quaternions (w, x, y, z), w >= 0, of rotation matrices (..., 3, 3) -> (..., 4)."""
    m = np.asarray(matrix, dtype=np.float64)
    # Shepperd's method, vectorised: use the largest of the four squared components.
    trace = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    squares = np.stack(
        [1 + trace, 1 + 2 * m[..., 0, 0] - trace, 1 + 2 * m[..., 1, 1] - trace, 1 + 2 * m[..., 2, 2] - trace], axis=-1
    )  # (..., 4) 4 * component^2
    best = np.argmax(squares, axis=-1)
    pairs = np.stack(
        [
            m[..., 2, 1] - m[..., 1, 2],
            m[..., 0, 2] - m[..., 2, 0],
            m[..., 1, 0] - m[..., 0, 1],
            m[..., 1, 0] + m[..., 0, 1],
            m[..., 0, 2] + m[..., 2, 0],
            m[..., 2, 1] + m[..., 1, 2],
        ],
        axis=-1,
    )  # (..., 6): 4wx, 4wy, 4wz, 4xy, 4xz, 4yz
    big = np.sqrt(np.maximum(np.take_along_axis(squares, best[..., None], -1)[..., 0], 1e-300))  # 2 * |q_best|
    wx, wy, wz, xy, xz, yz = (pairs[..., i] for i in range(6))
    candidates = np.stack(
        [
            np.stack([big * big, wx, wy, wz], -1),
            np.stack([wx, big * big, xy, xz], -1),
            np.stack([wy, xy, big * big, yz], -1),
            np.stack([wz, xz, yz, big * big], -1),
        ],
        axis=-2,
    )  # (..., 4, 4): row i is 2|q_i| * 2q
    q = np.take_along_axis(candidates, best[..., None, None], -2)[..., 0, :] / (2 * big[..., None])
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., :1] < 0, -q, q)


@dataclass(frozen=True, eq=False)
class Camera:
    """One calibrated camera.

    Attributes:
        name: the camera's name (the video sheet's `camera` column).
        size: (width, height) of its images in pixels.
        matrix: float64 (3, 3) camera matrix [[fx, 0, cx], [0, fy, cy], [0, 0, 1]].
        distortion: float64 (5,) (k1, k2, p1, p2, k3), or (4,) (k1, k2, k3, k4) when `fisheye`.
        rotation: float64 (3,) Rodrigues vector of R, world to camera.
        translation: float64 (3,) t in millimetres, world to camera (x_c = R X + t).
        fisheye: whether the distortion is OpenCV's fisheye model.
    """

    name: str
    size: tuple[int, int]
    matrix: np.ndarray
    distortion: np.ndarray
    rotation: np.ndarray = field(default_factory=lambda: np.zeros(3))
    translation: np.ndarray = field(default_factory=lambda: np.zeros(3))
    fisheye: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", (int(self.size[0]), int(self.size[1])))
        for name, shape in (("matrix", (3, 3)), ("rotation", (3,)), ("translation", (3,))):
            value = np.array(getattr(self, name), dtype=np.float64)
            if value.shape != shape:
                raise ValueError(f"camera {self.name!r}: {name} must have shape {shape}, got {value.shape}")
            object.__setattr__(self, name, value)
        distortion = np.array(self.distortion, dtype=np.float64).reshape(-1)
        n = 4 if self.fisheye else 5
        if self.fisheye and len(distortion) != 4:
            raise ValueError(
                f"camera {self.name!r}: a fisheye camera has 4 distortion coefficients, got {len(distortion)}"
            )
        if not self.fisheye and len(distortion) not in (4, 5):
            raise ValueError(
                f"camera {self.name!r}: a pinhole camera has 5 distortion coefficients (k1 k2 p1 p2 k3), "
                f"got {len(distortion)}"
            )
        object.__setattr__(self, "distortion", np.pad(distortion, (0, n - len(distortion))))

    @property
    def rotation_matrix(self) -> np.ndarray:
        """float64 (3, 3) R, world to camera."""
        return rodrigues(self.rotation)

    @property
    def centre(self) -> np.ndarray:
        """float64 (3,) the camera's optical centre in world millimetres, -R^T t."""
        return -self.rotation_matrix.T @ self.translation

    @property
    def focal(self) -> float:
        """The mean of fx and fy, in pixels."""
        return float((self.matrix[0, 0] + self.matrix[1, 1]) / 2)

    def with_pose(self, rotation: np.ndarray, translation: np.ndarray) -> Camera:
        """The same camera at another pose (world to camera)."""
        return replace(self, rotation=np.asarray(rotation, float), translation=np.asarray(translation, float))

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) in millimetres to this camera's frame (..., 3)."""
        return np.asarray(points, dtype=np.float64) @ self.rotation_matrix.T + self.translation

    def project(self, points: np.ndarray) -> np.ndarray:
        """Project world points (..., 3) to pixels (..., 2); points behind the camera give NaN."""
        return project(self.to_camera(points), self.matrix, self.distortion, self.fisheye)

    def undistort(self, pixels: np.ndarray) -> np.ndarray:
        """Pixels (..., 2) to normalised coordinates (..., 2) (x_c / z_c, y_c / z_c) of their rays.

        Where the distortion model cannot be inverted (outside the region where it is monotone)
        the result is NaN.
        """
        return undistort(pixels, self.matrix, self.distortion, self.fisheye)

    def to_dict(self) -> dict[str, Any]:
        """The camera as Anipose's calibration.toml has it (one `[cam_N]` table)."""
        d: dict[str, Any] = {
            "name": self.name,
            "size": list(self.size),
            "matrix": self.matrix.tolist(),
            "distortions": self.distortion.tolist(),
            "rotation": self.rotation.tolist(),
            "translation": self.translation.tolist(),
        }
        if self.fisheye:
            d["fisheye"] = True
        return d


def distort(normalised: np.ndarray, distortion: np.ndarray, fisheye: bool) -> np.ndarray:
    """Apply the distortion to normalised coordinates (..., 2) -> distorted normalised (..., 2)."""
    a, b = normalised[..., 0], normalised[..., 1]
    d = distortion
    if fisheye:
        r = np.hypot(a, b)
        theta = np.arctan(r)
        t2 = theta * theta
        theta_d = theta * (1 + t2 * (d[..., 0] + t2 * (d[..., 1] + t2 * (d[..., 2] + t2 * d[..., 3]))))
        scale = np.where(r > 1e-12, theta_d / np.where(r > 1e-12, r, 1.0), 1.0)
        return np.stack([a * scale, b * scale], axis=-1)
    k1, k2, p1, p2, k3 = (d[..., i] for i in range(5))
    r2 = a * a + b * b
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    x = a * radial + 2 * p1 * a * b + p2 * (r2 + 2 * a * a)
    y = b * radial + p1 * (r2 + 2 * b * b) + 2 * p2 * a * b
    return np.stack([x, y], axis=-1)


def project(camera_points: np.ndarray, matrix: np.ndarray, distortion: np.ndarray, fisheye: bool) -> np.ndarray:
    """Points in a camera's frame (..., 3) to pixels (..., 2); NaN behind the camera.

    `matrix` (..., 3, 3) and `distortion` (..., n) broadcast against the points' leading axes.
    """
    z = camera_points[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        normalised = camera_points[..., :2] / np.where(z > 0, z, np.nan)[..., None]
    x = distort(normalised, distortion, fisheye)
    m = np.asarray(matrix)
    u = m[..., 0, 0] * x[..., 0] + m[..., 0, 1] * x[..., 1] + m[..., 0, 2]
    v = m[..., 1, 1] * x[..., 1] + m[..., 1, 2]
    return np.stack([u, v], axis=-1)


def undistort(pixels: np.ndarray, matrix: np.ndarray, distortion: np.ndarray, fisheye: bool) -> np.ndarray:
    """Invert `project` up to depth: pixels (..., 2) to normalised ray coordinates (..., 2).

    Newton's method from the distorted point, with the distortion's analytic Jacobian; points
    where it does not converge to 1e-9 (the model folds back there) are NaN.
    """
    pixels = np.asarray(pixels, dtype=np.float64)
    m = np.asarray(matrix, dtype=np.float64)
    fy, cy, fx, cx, skew = m[1, 1], m[1, 2], m[0, 0], m[0, 2], m[0, 1]
    yd = (pixels[..., 1] - cy) / fy
    xd = (pixels[..., 0] - cx - skew * yd) / fx
    target = np.stack([xd, yd], axis=-1)
    d = np.asarray(distortion, dtype=np.float64)
    if not np.any(d):
        return target
    if fisheye:
        return _undistort_fisheye(target, d)
    k1, k2, p1, p2, k3 = d
    guess = target.copy()
    with np.errstate(invalid="ignore", over="ignore"):
        for _ in range(UNDISTORT_ITERATIONS):
            a, b = guess[..., 0], guess[..., 1]
            r2 = a * a + b * b
            radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
            dradial = k1 + r2 * (2 * k2 + 3 * k3 * r2)  # d radial / d r2
            residual = distort(guess, d, False) - target
            j00 = radial + 2 * a * a * dradial + 2 * p1 * b + 6 * p2 * a
            j01 = 2 * a * b * dradial + 2 * p1 * a + 2 * p2 * b
            j10 = 2 * a * b * dradial + 2 * p1 * a + 2 * p2 * b
            j11 = radial + 2 * b * b * dradial + 6 * p1 * b + 2 * p2 * a
            det = j00 * j11 - j01 * j10
            step_a = (j11 * residual[..., 0] - j01 * residual[..., 1]) / det
            step_b = (-j10 * residual[..., 0] + j00 * residual[..., 1]) / det
            guess = guess - np.stack([step_a, step_b], axis=-1)
            if not np.nanmax(np.abs(step_a) + np.abs(step_b), initial=0.0) > 1e-13:
                break
        error = np.linalg.norm(distort(guess, d, False) - target, axis=-1)
        a, b = guess[..., 0], guess[..., 1]
        r2 = a * a + b * b
        # The model must still grow outwards there (d r_distorted / d r > 0), or the root is a fold.
        monotone = 1 + r2 * (3 * k1 + r2 * (5 * k2 + 7 * k3 * r2)) > 0
    ok = (error < 1e-9) & monotone
    return np.where(ok[..., None], guess, np.nan)


def _undistort_fisheye(target: np.ndarray, d: np.ndarray) -> np.ndarray:
    theta_d = np.hypot(target[..., 0], target[..., 1])
    theta = theta_d.copy()
    with np.errstate(invalid="ignore", over="ignore"):
        for _ in range(UNDISTORT_ITERATIONS):
            t2 = theta * theta
            f = theta * (1 + t2 * (d[0] + t2 * (d[1] + t2 * (d[2] + t2 * d[3])))) - theta_d
            df = 1 + t2 * (3 * d[0] + t2 * (5 * d[1] + t2 * (7 * d[2] + 9 * d[3] * t2)))
            step = f / df
            theta = theta - step
            if not np.nanmax(np.abs(step), initial=0.0) > 1e-13:
                break
        t2 = theta * theta
        error = np.abs(theta * (1 + t2 * (d[0] + t2 * (d[1] + t2 * (d[2] + t2 * d[3])))) - theta_d)
        ok = (error < 1e-9) & (theta >= 0) & (theta < np.pi / 2) & (df > 0)
        scale = np.where(theta_d > 1e-12, np.tan(theta) / np.where(theta_d > 1e-12, theta_d, 1.0), 1.0)
    return np.where(ok[..., None], target * scale[..., None], np.nan)


def projection_matrices(cameras: Sequence[Camera]) -> np.ndarray:
    """float64 (C, 3, 4) [R | t] of each camera: world points to normalised (undistorted) rays."""
    return np.stack([np.hstack([c.rotation_matrix, c.translation[:, None]]) for c in cameras])
