"""Bundle adjustment of a rig against the board corners it saw: scipy least_squares, sparse Jacobian.

The unknowns are, per camera, its pose (Rodrigues rotation and translation, world to camera),
one focal length (square pixels), the principal point and the distortion coefficients, and per
frame the board's pose in the world. The residuals are the pixel differences between each
detected corner and the corner of the board model projected through its camera. One camera's
pose is held fixed (it defines the world frame); the board's known square size fixes the scale,
so the rig comes out in millimetres. Any other parameter can be held fixed too (the principal
point, distortion terms), through `free`.

Each residual depends on one camera and one frame only, which `jac_sparsity` tells
least_squares: the Jacobian then costs a couple of dozen evaluations of the residuals whatever
the number of frames, and the trust-region steps are solved by LSMR on a sparse matrix, in one
thread, so the result does not depend on the machine's thread count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix

from posecore.threed.camera import Camera, project, rodrigues

POSE = 6  # rotation (3) and translation (3)


def camera_vector(camera: Camera) -> np.ndarray:
    """A camera's parameters as the adjustment holds them: (rotation 3, translation 3, f, cx, cy, distortion)."""
    m = camera.matrix
    return np.concatenate([camera.rotation, camera.translation, [camera.focal, m[0, 2], m[1, 2]], camera.distortion])


def vector_camera(vector: np.ndarray, like: Camera) -> Camera:
    """The camera of `camera_vector` values, with the name, size and model of `like`."""
    f, cx, cy = vector[6:9]
    matrix = np.array([[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]])
    return Camera(like.name, like.size, matrix, vector[9:], vector[:3], vector[3:6], like.fisheye)


@dataclass(frozen=True, eq=False)
class Observations:
    """Detected board corners, one row each.

    Attributes:
        camera: int (n,) index of the camera that saw it.
        frame: int (n,) index of the frame (board pose).
        board: float64 (n, 3) the corner in the board's frame (mm).
        pixels: float64 (n, 2) where it was detected.
    """

    camera: np.ndarray
    frame: np.ndarray
    board: np.ndarray
    pixels: np.ndarray


def residuals(cameras: np.ndarray, poses: np.ndarray, obs: Observations, fisheye: bool) -> np.ndarray:
    """Reprojection residuals (n, 2), pixels, of `camera_vector` rows (C, P) and board poses (F, 6)."""
    r_frame = rodrigues(poses[:, :3])  # (F, 3, 3)
    r_camera = rodrigues(cameras[:, :3])  # (C, 3, 3)
    world = np.einsum("nij,nj->ni", r_frame[obs.frame], obs.board) + poses[obs.frame, 3:]  # (n, 3)
    local = np.einsum("nij,nj->ni", r_camera[obs.camera], world) + cameras[obs.camera, 3:6]  # (n, 3)
    c = cameras[obs.camera]  # (n, P)
    matrix = np.zeros((len(c), 3, 3))
    matrix[:, 0, 0] = matrix[:, 1, 1] = c[:, 6]
    matrix[:, 0, 2], matrix[:, 1, 2], matrix[:, 2, 2] = c[:, 7], c[:, 8], 1.0
    return project(local, matrix, c[:, 9:], fisheye) - obs.pixels


def adjust(
    cameras: np.ndarray,
    poses: np.ndarray,
    obs: Observations,
    *,
    fisheye: bool,
    free_camera: np.ndarray,
    robust_px: float | None = None,
    max_iterations: int = 100,
) -> tuple[np.ndarray, np.ndarray]:
    """Minimise the reprojection residuals over the free parameters (Levenberg-Marquardt).

    Args:
        cameras: float64 (C, P) `camera_vector` rows, the starting point.
        poses: float64 (F, 6) board poses (rotation, translation), board to world.
        obs: the detected corners.
        fisheye: the cameras' distortion model.
        free_camera: bool (C, P) which camera parameters to adjust; every pose of a frame that has
            observations is adjusted.
        robust_px: None for least squares; else the scale (pixels) of a soft-L1 loss, which lets
            corners far off their fit pull less (iteratively reweighted).
        max_iterations: most Levenberg-Marquardt steps.

    Returns:
        The adjusted (cameras, poses).
    """
    cameras, poses = cameras.copy(), poses.copy()
    n_cameras, n_params = cameras.shape
    n_frames = len(poses)
    observed = np.zeros(n_frames, dtype=bool)
    observed[obs.frame] = True
    free = np.concatenate([free_camera.ravel(), np.repeat(observed, POSE)])
    n_obs = len(obs.camera)
    # Columns of the Jacobian: observation i's residuals depend on its camera's P and its frame's 6 parameters.
    columns = np.concatenate(
        [
            obs.camera[:, None] * n_params + np.arange(n_params),
            n_cameras * n_params + obs.frame[:, None] * POSE + np.arange(POSE),
        ],
        axis=1,
    )  # (n, P + 6)
    rows = np.repeat(np.arange(2 * n_obs).reshape(n_obs, 2), n_params + POSE, axis=1).reshape(n_obs, 2, -1)

    def cost_of(r: np.ndarray) -> tuple[float, np.ndarray]:
        """The loss and each observation's weight (the loss's derivative in squared error)."""
        squared = (r**2).sum(axis=1)
        if robust_px is None:
            return float(squared.sum()), np.ones(n_obs)
        s = squared / robust_px**2
        return float((2 * (np.sqrt(1 + s) - 1)).sum() * robust_px**2), 1 / np.sqrt(1 + s)

    r = residuals(cameras, poses, obs, fisheye)
    cost, weight = cost_of(r)
    damping = 1e-3
    for _ in range(max_iterations):
        jac = _jacobian(cameras, poses, obs, fisheye, r)  # (n, 2, P + 6)
        values = jac * np.sqrt(weight)[:, None, None]
        j = coo_matrix(
            (values.ravel(), (rows.ravel(), np.broadcast_to(columns[:, None], rows.shape).ravel())),
            shape=(2 * n_obs, len(free)),
        ).tocsc()[:, np.flatnonzero(free)]
        hessian = (j.T @ j).toarray()
        gradient = j.T @ (r * np.sqrt(weight)[:, None]).ravel()
        diagonal = np.maximum(np.diag(hessian), 1e-12)
        improved = False
        while damping < 1e12:
            step = -np.linalg.solve(hessian + damping * np.diag(diagonal), gradient)
            trial_cameras, trial_poses = _apply(cameras, poses, free, step)
            trial_r = residuals(trial_cameras, trial_poses, obs, fisheye)
            trial_cost, trial_weight = cost_of(trial_r)
            if np.isfinite(trial_cost) and trial_cost < cost:
                improved = True
                break
            damping *= 10
        if not improved:
            break
        done = (cost - trial_cost) < 1e-12 * cost
        cameras, poses, r, cost, weight = trial_cameras, trial_poses, trial_r, trial_cost, trial_weight
        damping = max(damping / 10, 1e-9)
        if done:
            break
    return cameras, poses


def _apply(cameras: np.ndarray, poses: np.ndarray, free: np.ndarray, step: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    full = np.concatenate([cameras.ravel(), poses.ravel()])
    full[free] += step
    return full[: cameras.size].reshape(cameras.shape), full[cameras.size :].reshape(poses.shape)


def _jacobian(cameras: np.ndarray, poses: np.ndarray, obs: Observations, fisheye: bool, r: np.ndarray) -> np.ndarray:
    """D residual / d parameter of each observation: float64 (n, 2, P + 6), forward differences.

    Parameter k of every camera is moved at once (each residual sees only its own camera), then
    parameter k of every board pose: P + 6 evaluations of the residuals in all.
    """
    n_params = cameras.shape[1]
    jac = np.empty((len(obs.camera), 2, n_params + POSE))
    for k in range(n_params + POSE):
        moved_cameras, moved_poses = cameras.copy(), poses.copy()
        target = moved_cameras[:, k] if k < n_params else moved_poses[:, k - n_params]
        step = 1e-7 * np.maximum(np.abs(target), 1.0)
        if k < n_params:
            moved_cameras[:, k] += step
            h = step[obs.camera]
        else:
            moved_poses[:, k - n_params] += step
            h = step[obs.frame]
        jac[:, :, k] = (residuals(moved_cameras, moved_poses, obs, fisheye) - r) / h[:, None]
    return jac
