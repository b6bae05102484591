"""A synthetic multi-camera session on disk: calibration images, one video per camera, ground truth.

`make_rig_archive(out_dir, RigArchiveConfig())` writes

- `calibration/<camera>/board-NN.png`: the board in `n_board_frames` poses as each camera sees
  it (`posecore.synth.rig.render_board`), the k-th image of every camera at the same moment;
- `videos/<camera>.mp4`: the synthetic animal walking, seen by each camera
  (`posecore.synth.animal3d`), all of `n_frames` frames;
- `ground_truth/calibration.toml`: the true rig (Anipose's layout, world frame: the arena's);
- `ground_truth/points3d.csv`: frame, keypoint, x, y, z (mm) of every keypoint;
- `ground_truth/<camera>.csv`: frame, keypoint, x, y (pixels) of its exact projection (empty
  where outside the image).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from posecore.io.atomic import atomic_path
from posecore.synth.animal import KEYPOINTS
from posecore.synth.animal3d import project_views, render_view, simulate_3d
from posecore.synth.media import encode_video
from posecore.synth.rig import board_poses, make_rig, pixel_rays, render_board
from posecore.threed.boards import Board
from posecore.threed.rig import Rig, write_calibration

SMALL_BOARD = Board("charuco", 5, 7, 40.0, 30.0, 4, 50)
"""A board with squares large enough to be found in 640 x 512 images of the synthetic rig."""


@dataclass(frozen=True)
class RigArchiveConfig:
    """What `make_rig_archive` writes.

    Attributes:
        n_cameras: cameras of the rig.
        width: image width in pixels.
        height: image height in pixels.
        n_board_frames: board poses (calibration images per camera).
        n_frames: frames of each session video.
        fps: the videos' frame rate.
        board: the calibration board.
        seed: seeds the rig, the board's poses, the animal's motion and the pixel noise.
    """

    n_cameras: int = 3
    width: int = 640
    height: int = 512
    n_board_frames: int = 15
    n_frames: int = 60
    fps: float = 30.0
    board: Board = field(default_factory=lambda: SMALL_BOARD)
    seed: int = 0


@dataclass(frozen=True, eq=False)
class RigArchive:
    """What `make_rig_archive` wrote, and the truth it was made from.

    Attributes:
        root: the folder.
        rig: the true cameras.
        board: the board.
        calibration_images: per camera, its board images in order.
        videos: per camera, its session video.
        keypoints: float64 (T, K, 3) true 3D keypoints (`animal.KEYPOINTS`), mm.
        views: float64 (C, T, K, 2) their exact projections; NaN outside an image.
    """

    root: Path
    rig: Rig
    board: Board
    calibration_images: dict[str, list[Path]]
    videos: dict[str, Path]
    keypoints: np.ndarray
    views: np.ndarray


def make_rig_archive(out_dir: str | Path, config: RigArchiveConfig) -> RigArchive:
    """Write a synthetic multi-camera session (see the module docstring)."""
    import cv2

    root = Path(out_dir)
    rng = np.random.default_rng(config.seed)
    rig = make_rig(config.n_cameras, width=config.width, height=config.height, seed=config.seed)
    poses = board_poses(config.n_board_frames, config.board, rng)
    images: dict[str, list[Path]] = {}
    for c, camera in enumerate(rig.cameras):
        rays = pixel_rays(camera)
        folder = root / "calibration" / camera.name
        folder.mkdir(parents=True, exist_ok=True)
        images[camera.name] = []
        for f, pose in enumerate(poses):
            path = folder / f"board-{f:02d}.png"
            image = render_board(camera, config.board, pose, seed=config.seed * 1000 + c * 100 + f, rays=rays)
            with atomic_path(path) as tmp:
                cv2.imwrite(str(tmp), image)
            images[camera.name].append(path)
    animal = simulate_3d(config.n_frames, config.fps, rng)
    views = project_views(rig, animal.keypoints)  # (C, T, K, 2)
    videos = {}
    for c, camera in enumerate(rig.cameras):
        path = root / "videos" / f"{camera.name}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        frames = render_view(rig, animal, c, seed=config.seed * 1000 + c)
        encode_video(frames, path, config.width, config.height, config.fps, crf=18)
        videos[camera.name] = path
    truth = root / "ground_truth"
    truth.mkdir(parents=True, exist_ok=True)
    write_calibration(rig, truth / "calibration.toml")
    t_count, k_count = animal.keypoints.shape[:2]
    index = {"frame": np.repeat(np.arange(t_count), k_count), "keypoint": np.tile(KEYPOINTS, t_count)}
    _write_csv(pd.DataFrame({**index, **dict(zip("xyz", animal.keypoints.reshape(-1, 3).T, strict=True))}),
               truth / "points3d.csv")  # fmt: skip
    for c, camera in enumerate(rig.cameras):
        _write_csv(pd.DataFrame({**index, **dict(zip("xy", views[c].reshape(-1, 2).T, strict=True))}),
                   truth / f"{camera.name}.csv")  # fmt: skip
    return RigArchive(root, rig, config.board, images, videos, animal.keypoints, views)


def write_views_2d(
    folder: str | Path,
    names: list[str],
    views: np.ndarray,
    *,
    noise_px: float = 0.5,
    score: float = 0.9,
    seed: int = 0,
    lead: dict[str, int] | None = None,
    keypoints: tuple[str, ...] = KEYPOINTS,
) -> dict[str, Path]:
    """Write views (C, T, K, 2) as the 2D trajectory files a model would have made of each camera's video.

    Each goes to `folder/video=<name>/part-0.parquet` (posecore.io.trajectories' layout), with
    Gaussian noise of `noise_px` and every score `score`; `lead[name]` extra copies of frame 0
    come first (a camera started that many frames early). Returns the files by name.
    """
    from posecore.io.trajectories import Provenance, keypoint_table, write_atomic

    rng = np.random.default_rng(seed)
    files = {}
    for name, view in zip(names, views, strict=True):
        peaks = np.concatenate([view + rng.normal(0, noise_px, view.shape), np.full((*view.shape[:2], 1), score)], -1)
        peaks = np.concatenate([np.repeat(peaks[:1], (lead or {}).get(name, 0), axis=0), peaks])
        frames = np.arange(len(peaks))
        files[name] = Path(folder) / f"video={name}" / "part-0.parquet"
        provenance = Provenance("synthetic", {}, f"{name}.mp4", 0, 0.0)
        write_atomic(keypoint_table(frames, frames / 30.0, peaks, keypoints), files[name], provenance)
    return files


def _write_csv(table: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
