"""Training samples: a torch Dataset over one split of a `TrainingDataset`, and batch preparation.

The Dataset hands out raw frames (uint8) and their keypoints, which are cheap to collate and
to move to the accelerator. `prepare_batch` then does the rest on the batch's device, in the
training module's `on_after_batch_transfer`: normalisation and padding with
`posecore.predict.prepare_images` (the function inference uses, so training and inference
cannot differ in preprocessing), augmentation (`posecore.train.augment`), and the
confidence-map targets (`posecore.train.targets`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import Dataset

from posecore.io.dataset import Split, TrainingDataset
from posecore.predict import prepare_images
from posecore.train.augment import Augmentation, augment_batch
from posecore.train.targets import training_targets


class PoseDataset(Dataset):
    """The frames of one split, as they are in the dataset.

    Args:
        dataset: the training dataset.
        split: which frames ("train", "val" or "test").
        indices: a subset of the split's frames (dataset indices); None for all of them.

    Each item is a dict: "image" uint8 (H, W, C) and "keypoints" float32 (K, 2) as (x, y) in
    image pixels, NaN where unlabeled.
    """

    def __init__(self, dataset: TrainingDataset, split: Split, indices: np.ndarray | None = None) -> None:
        self.indices = dataset.indices(split) if indices is None else np.asarray(indices)
        self.images = dataset.images
        self.keypoints = dataset.keypoints

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        index = int(self.indices[item])
        return {
            "image": torch.from_numpy(np.ascontiguousarray(self.images[index])),  # (H, W, C) uint8
            "keypoints": torch.from_numpy(np.asarray(self.keypoints[index], dtype=np.float32)),  # (K, 2)
        }


def prepare_batch(
    batch: dict[str, torch.Tensor],
    mean: Sequence[float],
    std: Sequence[float],
    input_multiple: int,
    output_stride: int,
    sigma_px: float,
    skeleton: tuple[tuple[int, int], ...] | None = None,
    augmentation: Augmentation | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Normalise, augment, pad and add targets to a batch of raw frames, on the batch's device.

    Args:
        batch: "image" uint8 (B, H, W, C) and "keypoints" float32 (B, K, 2) (x, y) pixels.
        mean: per-channel mean (C) in uint8 units.
        std: per-channel standard deviation (C) in uint8 units.
        input_multiple: images are padded at the bottom and right to a multiple of it.
        output_stride: image pixels per map cell.
        sigma_px: target Gaussian standard deviation in image pixels.
        skeleton: edges for posture-graph targets (None: keypoint maps only).
        augmentation: random transforms (None: none, as for validation).
        generator: random source for augmentation, on the batch's device.

    Returns:
        "image" float32 (B, C, H', W') padded, "maps" float32 (B, K + E, H' / s, W' / s),
        "mask" bool (B, K + E), "keypoints" float32 (B, K, 2) after augmentation.
    """
    device = batch["image"].device
    images = prepare_images(batch["image"], mean, std, 1, device)  # (B, C, H, W)
    keypoints = batch["keypoints"].to(device).float()  # (B, K, 2)
    if augmentation is not None and augmentation.active:
        images, keypoints = augment_batch(images, keypoints, augmentation, mean, std, generator)
    height, width = images.shape[-2:]
    pad_h = math.ceil(height / input_multiple) * input_multiple - height
    pad_w = math.ceil(width / input_multiple) * input_multiple - width
    images = F.pad(images, (0, pad_w, 0, pad_h))  # (B, C, H', W'), as prepare_images pads
    map_size = (images.shape[-2] // output_stride, images.shape[-1] // output_stride)
    maps, mask = training_targets(keypoints, map_size, output_stride, sigma_px, skeleton)
    return {"image": images.contiguous(), "maps": maps, "mask": mask, "keypoints": keypoints}


def channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 images (N, H, W, C), in uint8 units (std >= 1)."""
    channels = images.shape[-1]
    total = np.zeros(channels)
    total_sq = np.zeros(channels)
    for start in range(0, len(images), 16):  # chunks keep the float64 copy small
        chunk = images[start : start + 16].reshape(-1, channels).astype(np.float64)  # (n * H * W, C)
        total += chunk.sum(axis=0)
        total_sq += (chunk**2).sum(axis=0)
    count = images.size / channels
    mean = total / count
    std = np.maximum(np.sqrt(np.maximum(total_sq / count - mean**2, 0.0)), 1.0)
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)
