"""Training samples: a torch Dataset over one split of a `TrainingDataset`.

Each sample is normalised with the model's mean and std (`posecore.predict.prepare_images`,
the same function inference uses), optionally augmented (horizontal flip with left/right
swap, translation, rotation: a minimal set in plain torch), padded at the bottom and right to
the model's input multiple, and given its confidence-map targets. Random draws use torch's
global generator, which `lightning.seed_everything` seeds (and DataLoader workers reseed per
worker and epoch), so a run is reproducible; tests pass their own `generator`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import Dataset

from posecore.io.dataset import Split, TrainingDataset
from posecore.predict import prepare_images
from posecore.train.targets import confidence_maps


@dataclass(frozen=True)
class Augmentation:
    """Random transforms applied to training frames.

    Attributes:
        flip: flip horizontally with probability 1/2, swapping `swap_pairs`.
        translation_px: uniform shift in [-t, t] pixels, independently in x and y.
        rotation_deg: uniform rotation in [-r, r] degrees about the image centre.
        swap_pairs: (left, right) keypoint index pairs that exchange names under a flip.
    """

    flip: bool = False
    translation_px: float = 0.0
    rotation_deg: float = 0.0
    swap_pairs: tuple[tuple[int, int], ...] = ()

    @property
    def active(self) -> bool:
        """Whether any transform is on."""
        return self.flip or self.translation_px > 0 or self.rotation_deg > 0


def flip_horizontal(
    image: torch.Tensor, keypoints: torch.Tensor, swap_pairs: tuple[tuple[int, int], ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror an image left-right and its keypoints with it.

    Args:
        image: (C, H, W).
        keypoints: (K, 2) as (x, y) in pixels; x becomes W - 1 - x.
        swap_pairs: (left, right) index pairs whose coordinates exchange, so that "left_ear"
            still names the animal's left ear in the mirrored image.

    Returns:
        The flipped image (C, H, W) and keypoints (K, 2).
    """
    width = image.shape[-1]
    flipped = keypoints.clone()
    flipped[:, 0] = (width - 1) - keypoints[:, 0]
    order = list(range(len(keypoints)))
    for left, right in swap_pairs:
        order[left], order[right] = right, left
    return image.flip(-1), flipped[order]


def affine(
    image: torch.Tensor, keypoints: torch.Tensor, angle_deg: float, shift: tuple[float, float]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate about the image centre by `angle_deg` (counter-clockwise on screen) then shift by (dx, dy).

    Args:
        image: (C, H, W) float; pixels that come from outside the image are 0.
        keypoints: (K, 2) as (x, y) in pixels; points that leave the image become NaN.
        angle_deg: rotation angle.
        shift: (dx, dy) in pixels.

    Returns:
        The transformed image (C, H, W) and keypoints (K, 2).
    """
    _, height, width = image.shape
    theta = math.radians(angle_deg)
    cos, sin = math.cos(theta), math.sin(theta)
    # Forward map p' = R (p - c) + c + t, with y pointing down: counter-clockwise on screen.
    rotation = torch.tensor([[cos, sin], [-sin, cos]], dtype=torch.float32, device=image.device)
    centre = torch.tensor([(width - 1) / 2, (height - 1) / 2], dtype=torch.float32, device=image.device)
    offset = torch.tensor(shift, dtype=torch.float32, device=image.device)
    moved = (keypoints.float() - centre) @ rotation.T + centre + offset  # (K, 2)
    x, y = moved[:, 0], moved[:, 1]
    inside = (x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5)  # (K,)
    moved = torch.where(inside.unsqueeze(-1), moved, torch.nan)
    # Sampling grid: for each output pixel p', the input pixel p = R^T (p' - c - t) + c.
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float32, device=image.device),
        torch.arange(width, dtype=torch.float32, device=image.device),
        indexing="ij",
    )
    out_xy = torch.stack([xs, ys], dim=-1)  # (H, W, 2) as (x, y)
    in_xy = (out_xy - centre - offset) @ rotation + centre  # (H, W, 2)
    size = torch.tensor([width, height], dtype=torch.float32, device=image.device)
    grid = (2 * in_xy + 1) / size - 1  # (H, W, 2) in [-1, 1], align_corners=False
    warped = F.grid_sample(image.unsqueeze(0), grid.unsqueeze(0), mode="bilinear", align_corners=False)
    return warped[0], moved


def augment(
    image: torch.Tensor, keypoints: torch.Tensor, augmentation: Augmentation, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply `augmentation`'s random transforms to one image (C, H, W) and its keypoints (K, 2)."""

    def uniform(limit: float) -> float:
        return float((torch.rand((), generator=generator) * 2 - 1) * limit)

    if augmentation.flip and float(torch.rand((), generator=generator)) < 0.5:
        image, keypoints = flip_horizontal(image, keypoints, augmentation.swap_pairs)
    if augmentation.translation_px > 0 or augmentation.rotation_deg > 0:
        angle = uniform(augmentation.rotation_deg)
        shift = (uniform(augmentation.translation_px), uniform(augmentation.translation_px))
        image, keypoints = affine(image, keypoints, angle, shift)
    return image, keypoints


class PoseDataset(Dataset):
    """Samples of one split, ready for the model.

    Args:
        dataset: the training dataset.
        split: which frames ("train", "val" or "test").
        mean: per-channel mean (C) in uint8 units.
        std: per-channel standard deviation (C) in uint8 units.
        input_multiple: images are padded at the bottom and right to a multiple of it.
        output_stride: image pixels per map cell.
        sigma_px: target Gaussian standard deviation in image pixels.
        augmentation: random transforms (None: none, as for validation).
        generator: random source for augmentation (None: torch's global generator).

    Each item is a dict: "image" float32 (C, H', W'), "maps" float32 (K, H' / s, W' / s),
    "mask" bool (K,), "keypoints" float32 (K, 2) as (x, y) image pixels after augmentation,
    NaN where unlabeled.
    """

    def __init__(
        self,
        dataset: TrainingDataset,
        split: Split,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        input_multiple: int,
        output_stride: int,
        sigma_px: float,
        augmentation: Augmentation | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        self.indices = dataset.indices(split)
        self.images = dataset.images
        self.keypoints = dataset.keypoints
        self.mean, self.std = mean, std
        self.input_multiple = input_multiple
        self.output_stride = output_stride
        self.sigma_px = sigma_px
        self.augmentation = augmentation if augmentation is not None and augmentation.active else None
        self.generator = generator

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        index = int(self.indices[item])
        image = prepare_images(self.images[index : index + 1], self.mean, self.std, 1)[0]  # (C, H, W)
        keypoints = torch.from_numpy(np.asarray(self.keypoints[index], dtype=np.float32))  # (K, 2)
        if self.augmentation is not None:
            image, keypoints = augment(image, keypoints, self.augmentation, self.generator)
        height, width = image.shape[-2:]
        pad_h = math.ceil(height / self.input_multiple) * self.input_multiple - height
        pad_w = math.ceil(width / self.input_multiple) * self.input_multiple - width
        image = F.pad(image, (0, pad_w, 0, pad_h))  # (C, H', W'), as prepare_images pads
        map_size = (image.shape[-2] // self.output_stride, image.shape[-1] // self.output_stride)
        maps, mask = confidence_maps(keypoints.unsqueeze(0), map_size, self.output_stride, self.sigma_px)
        return {"image": image, "maps": maps[0], "mask": mask[0], "keypoints": keypoints}


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
