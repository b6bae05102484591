"""Fixtures for training tests: a small synthetic dataset whose keypoints are disc centres."""

from __future__ import annotations

import numpy as np
import pytest

from posecore.io.dataset import TrainingDataset


def make_disc_dataset(n: int = 64, size: int = 64, seed: int = 0, missing: float = 0.1) -> TrainingDataset:
    """Frames with a red and a blue disc (radius 5) on noise; keypoints are the discs' centres.

    The blue disc's label is NaN in about `missing` of the frames (the disc is still drawn), so
    a loss that trained unlabeled points towards zero would be pulled off.
    """
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 40, size=(n, size, size, 3), dtype=np.uint8)
    keypoints = rng.uniform(8, size - 9, size=(n, 2, 2)).astype(np.float32)  # (N, K=2, 2)
    rows, cols = np.mgrid[0:size, 0:size]
    for i in range(n):
        for k, colour in enumerate(((255, 40, 40), (40, 40, 255))):
            x, y = keypoints[i, k]
            inside = (cols - x) ** 2 + (rows - y) ** 2 <= 5.0**2
            images[i][inside] = colour
    keypoints[rng.random(n) < missing, 1] = np.nan
    split = np.array(["train"] * (n - n // 4 - n // 8) + ["val"] * (n // 4) + ["test"] * (n // 8), dtype=object)
    return TrainingDataset(images=images, keypoints=keypoints, split=split, keypoint_names=("red", "blue"))


@pytest.fixture(scope="session")
def disc_dataset() -> TrainingDataset:
    return make_disc_dataset()


@pytest.fixture(autouse=True)
def _train_on_one_thread(one_torch_thread):
    """Every training test runs torch on one thread (see tests/conftest.py)."""
