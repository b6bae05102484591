"""A synthetic camera rig with exact ground truth: cameras, a board seen by them, images of it.

World frame: millimetres, z up, the arena floor at z = 0 and its centre at the origin. The
cameras stand on a circle around the arena, looking down at its centre, each with its own
focal length, principal point and lens distortion (`make_rig`). `board_views` moves a board
through the arena (tilted up to `max_tilt_deg`, facing up) and gives every corner's exact
projection in every camera that sees the board's front, plus Gaussian noise: the detections a
perfect detector would make. `render_board` draws the board as a camera would see it (through
its distortion, blurred and noisy), for tests of the detectors and of the whole calibration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posecore.threed.boards import Board
from posecore.threed.camera import Camera, rodrigues, rotation_vector
from posecore.threed.rig import Rig

SYNTH_BOARD = Board("charuco", 8, 11, 24.0, 18.75, 4, 1000)
"""The board of the synthetic rig: the one of the sleap-anipose data (8 x 11 squares of 24 mm)."""

FACING_LIMIT_DEG = 75.0
"""A camera sees the board's corners when it looks at its front at most this far from its normal."""


def look_at(centre: np.ndarray, target: np.ndarray, roll_deg: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The pose (Rodrigues rotation, translation), world to camera, of a camera looking at a point.

    The camera at `centre` looks at `target`, image x to the right and y down, turned by
    `roll_deg` about its optical axis.
    """
    forward = target - centre
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right = right / np.linalg.norm(right)
    down = np.cross(forward, right)
    r = np.stack([right, down, forward])  # rows: camera axes in world coordinates
    roll = np.radians(roll_deg)
    turn = np.array([[np.cos(roll), -np.sin(roll), 0], [np.sin(roll), np.cos(roll), 0], [0, 0, 1]])
    r = turn @ r
    return rotation_vector(r), -r @ centre


def make_rig(
    n_cameras: int = 4,
    *,
    width: int = 1280,
    height: int = 1024,
    radius_mm: float = 550.0,
    height_mm: float = 450.0,
    seed: int = 0,
) -> Rig:
    """Cameras on a circle around the arena, each with its own lens, looking at its centre.

    Focal lengths 0.8 to 0.95 image widths, principal points within 2% of the image centre, barrel
    distortion k1 -0.25 to -0.1, k2 0.02 to 0.08, small tangential terms; azimuths evenly spread
    with up to 15 degrees of jitter, heights within 15% of `height_mm`.
    """
    rng = np.random.default_rng(seed)
    cameras = []
    for c in range(n_cameras):
        azimuth = 2 * np.pi * c / n_cameras + np.radians(rng.uniform(-15, 15))
        centre = np.array(
            [radius_mm * np.cos(azimuth), radius_mm * np.sin(azimuth), height_mm * rng.uniform(0.85, 1.15)]
        )
        rotation, translation = look_at(centre, np.array([0.0, 0.0, 40.0]), rng.uniform(-5, 5))
        focal = width * rng.uniform(0.8, 0.95)
        cx = (width - 1) / 2 + rng.uniform(-0.02, 0.02) * width
        cy = (height - 1) / 2 + rng.uniform(-0.02, 0.02) * height
        matrix = np.array([[focal, 0, cx], [0, focal, cy], [0, 0, 1.0]])
        distortion = np.array(
            [rng.uniform(-0.25, -0.1), rng.uniform(0.02, 0.08), rng.uniform(-1e-3, 1e-3), rng.uniform(-1e-3, 1e-3), 0]
        )
        cameras.append(Camera(f"cam{c}", (width, height), matrix, distortion, rotation, translation))
    return Rig(tuple(cameras))


@dataclass(frozen=True, eq=False)
class BoardViews:
    """A board moved through the arena and seen by a rig.

    Attributes:
        board: the board.
        poses: float64 (F, 6) board to world (Rodrigues rotation, translation in mm).
        truth: float64 (C, F, N, 2) exact projections of the corners; NaN where a camera does not see one.
        corners: float64 (C, F, N, 2) the same with Gaussian noise: what a detector reports.
    """

    board: Board
    poses: np.ndarray
    truth: np.ndarray
    corners: np.ndarray

    def points(self) -> np.ndarray:
        """float64 (F, N, 3) the corners' true world positions, mm."""
        r = rodrigues(self.poses[:, :3])
        return np.einsum("fij,nj->fni", r, self.board.object_points) + self.poses[:, None, 3:]


def board_poses(n_frames: int, board: Board, rng: np.random.Generator, max_tilt_deg: float = 45.0) -> np.ndarray:
    """(F, 6) random board poses (board to world), the board's front facing up.

    Centres within 120 mm of the arena's centre, 0 to 120 mm above the floor, tilted up to
    `max_tilt_deg`, turned any way about their normal.
    """
    poses = np.zeros((n_frames, 6))
    middle = np.array([board.squares_x, board.squares_y, 0]) * board.square_mm / 2
    for f in range(n_frames):
        spin = rodrigues(np.array([0.0, 0.0, rng.uniform(-np.pi, np.pi)]))
        axis_angle = rng.uniform(-np.pi, np.pi)
        tilt = np.radians(rng.uniform(0, max_tilt_deg)) * np.array([np.cos(axis_angle), np.sin(axis_angle), 0.0])
        flip = np.diag([1.0, -1.0, -1.0])  # board z (into the board) points down: its front faces up
        r = rodrigues(tilt) @ spin @ flip
        radius, angle = 120 * np.sqrt(rng.uniform()), rng.uniform(-np.pi, np.pi)
        centre = np.array([radius * np.cos(angle), radius * np.sin(angle), rng.uniform(0, 120)])
        poses[f] = np.concatenate([rotation_vector(r), centre - r @ middle])
    return poses


def board_views(
    rig: Rig, board: Board = SYNTH_BOARD, n_frames: int = 60, *, noise_px: float = 0.2, seed: int = 0
) -> BoardViews:
    """The board in `n_frames` random poses, as each camera of `rig` sees its corners.

    A corner is seen when it projects at least 4 px inside the image and the camera looks at the
    board's front within `FACING_LIMIT_DEG` of its normal.
    """
    rng = np.random.default_rng(seed)
    poses = board_poses(n_frames, board, rng)
    r = rodrigues(poses[:, :3])  # (F, 3, 3)
    points = np.einsum("fij,nj->fni", r, board.object_points) + poses[:, None, 3:]  # (F, N, 3)
    front = -r[:, :, 2]  # (F, 3) the board's front normal in the world
    truth = np.full((len(rig.cameras), n_frames, board.n_corners, 2), np.nan)
    for c, camera in enumerate(rig.cameras):
        pixels = camera.project(points)  # (F, N, 2)
        to_camera = camera.centre - points  # (F, N, 3)
        cos = np.einsum("fnk,fk->fn", to_camera, front) / np.linalg.norm(to_camera, axis=-1)
        width, height = camera.size
        inside = (
            (pixels[..., 0] > 3) & (pixels[..., 0] < width - 4) & (pixels[..., 1] > 3) & (pixels[..., 1] < height - 4)
        )
        visible = inside & (cos > np.cos(np.radians(FACING_LIMIT_DEG)))
        truth[c] = np.where(visible[..., None], pixels, np.nan)
    corners = truth + noise_px * rng.standard_normal(truth.shape)
    return BoardViews(board, poses, truth, corners)


def pixel_rays(camera: Camera) -> np.ndarray:
    """float64 (H, W, 2) the normalised ray of every pixel centre of `camera`."""
    width, height = camera.size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    return camera.undistort(np.stack([xs, ys], axis=-1))


def render_board(
    camera: Camera,
    board: Board,
    pose: np.ndarray,
    *,
    noise_std: float = 2.0,
    seed: int = 0,
    pixels_per_square: int = 80,
    rays: np.ndarray | None = None,
) -> np.ndarray:
    """The board at `pose` (board to world) as `camera` sees it: uint8 (H, W) grey.

    Every pixel's ray (through the lens distortion) is followed to the board's plane and the board's
    image is sampled there, blurred to the camera's resolution; off the board, or where the camera
    sees its back, a mid-grey floor. Then Gaussian noise of `noise_std` grey levels. `rays`, the
    camera's `pixel_rays`, saves computing them again for each image of one camera.
    """
    import cv2

    width, height = camera.size
    rays = pixel_rays(camera) if rays is None else rays  # (H, W, 2)
    r_board = rodrigues(pose[:3])
    # The ray x_c = s * (a, b, 1) in the board's frame: origin o and direction d.
    r = r_board.T @ camera.rotation_matrix.T  # camera to board
    origin = r_board.T @ (camera.centre - pose[3:])
    direction = np.concatenate([rays, np.ones((height, width, 1))], axis=-1) @ r.T  # (H, W, 3)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = -origin[2] / direction[..., 2]
    hit = origin[:2] + s[..., None] * direction[..., :2]  # (H, W, 2) board mm
    facing = origin[2] < 0  # the camera is on the front side (board z points into it)
    texture = board.image(pixels_per_square).astype(np.float32)
    margin = round(0.5 * pixels_per_square)
    scale = pixels_per_square / board.square_mm  # texture pixels per mm
    map_xy = (hit * scale + margin - 0.5).astype(np.float32)
    # Blur the texture to about the camera's sampling (texture pixels per image pixel at the board).
    distance = np.linalg.norm(origin)
    step = scale * distance / camera.focal
    texture = cv2.GaussianBlur(texture, (0, 0), max(0.5 * step, 0.5))
    image = cv2.remap(
        texture, map_xy[..., 0], map_xy[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=110.0
    )
    valid = facing & np.isfinite(s) & (s > 0)
    image = np.where(valid, image, 110.0)
    image = image * 0.8 + 20  # white 224, black 20
    rng = np.random.default_rng(seed)
    image = image + noise_std * rng.standard_normal(image.shape)
    return np.rint(image).clip(0, 255).astype(np.uint8)
