"""A tiny video (a dot moving over 21 frames, a keyframe every 8) and a tiny exported model.

Reference frames come from a plain full decode with ffmpeg (no seeking, no posecore reader),
so that the pipeline's frames are checked against ffmpeg itself.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from posecore.io.video import ffmpeg_executable
from posecore.models import ModelMeta, build_model, save_model

N_FRAMES, HEIGHT, WIDTH = 21, 48, 64
KEYPOINTS = ("head", "tail")


def dot_frames(n: int = N_FRAMES, shift: int = 0) -> np.ndarray:
    """uint8 (n, H, W, 3): a white square moving down and right over black."""
    frames = np.zeros((n, HEIGHT, WIDTH, 3), dtype=np.uint8)
    for i in range(n):
        j = (i + shift) % 20
        frames[i, 10 + j : 14 + j, 5 + 2 * j : 9 + 2 * j] = 255
    return frames


def ffmpeg_frames(path: Path) -> np.ndarray:
    """uint8 (N, H, W, 3): every frame of a plain sequential decode with ffmpeg."""
    raw = subprocess.run(
        [ffmpeg_executable(), "-loglevel", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, HEIGHT, WIDTH, 3).copy()


@pytest.fixture(scope="module")
def video(tmp_path_factory, encode_h264) -> Path:
    return encode_h264(dot_frames(), tmp_path_factory.mktemp("video") / "dot.mp4", fps=30, gop=8)


@pytest.fixture(scope="module")
def other_video(tmp_path_factory, encode_h264) -> Path:
    return encode_h264(dot_frames(13, shift=5), tmp_path_factory.mktemp("video") / "other.mp4", fps=25, gop=4)


def make_model(path: Path, seed: int = 0, keypoints: tuple[str, ...] = KEYPOINTS) -> Path:
    torch.manual_seed(seed)
    hyperparameters = {"growth_rate": 4, "n_transitions": 1, "n_stacks": 1}
    model = build_model("stacked_densenet", len(keypoints), 3, **hyperparameters).eval()
    meta = ModelMeta("stacked_densenet", hyperparameters, keypoints, (HEIGHT, WIDTH), 3, (0.0,) * 3, (255.0,) * 3, 4)
    save_model(path, model, meta)
    return path


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    return make_model(tmp_path_factory.mktemp("model") / "model.pt")
