"""Training samples: a torch Dataset over one split of a `TrainingDataset`, and batch preparation.

The Dataset hands out raw frames (uint8) and their keypoints, which are cheap to collate and
to move to the accelerator. `prepare_batch` then does the rest on the batch's device, in the
training module's `on_after_batch_transfer`: normalisation and padding with
`posecore.predict.prepare_images` (the function inference uses, so training and inference
cannot differ in preprocessing), augmentation (`posecore.train.augment`), and the
confidence-map targets (`posecore.train.targets`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from functools import partial

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
    crop_size: int = 0,
    crop_background: float = 0.0,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> dict[str, torch.Tensor]:
    """Normalise, augment, crop, pad and add targets to a batch of raw frames, on the batch's device.

    Args:
        batch: "image" uint8 (B, H, W, C) and "keypoints" float32 (B, K, 2) (x, y) pixels, or
            (B, I, K, 2) for several animals per frame (their maps: `training_targets`).
        mean: per-channel mean (C) in uint8 units.
        std: per-channel standard deviation (C) in uint8 units.
        input_multiple: images are padded at the bottom and right to a multiple of it.
        output_stride: image pixels per map cell.
        sigma_px: target Gaussian standard deviation in image pixels.
        skeleton: edges for posture-graph targets (None: keypoint maps only).
        augmentation: random transforms (None: none, as for validation).
        generator: random source for augmentation and crops, on the batch's device.
        crop_size: cut each frame to a square of this many pixels around a random labeled
            keypoint (`random_crops`; 0: whole frames, as for validation).
        crop_background: fraction of the crops placed anywhere in the frame instead.
        memory_format: the images' layout (`torch.channels_last` where the model is held so).

    Returns:
        "image" float32 (B, C, H', W') padded, "maps" float32 (B, K + E, H' / s, W' / s),
        "mask" bool (B, K + E), "keypoints" float32 (B, K, 2) (or (B, I, K, 2)) after augmentation.
    """
    device = batch["image"].device
    images = prepare_images(batch["image"], mean, std, 1, device)  # (B, C, H, W)
    keypoints = batch["keypoints"].to(device).float()  # (B, K, 2), or (B, I, K, 2)
    animals = keypoints.shape[:3] if keypoints.ndim == 4 else None
    if animals is not None:  # the transforms take (B, I * K, 2); left/right pairs swap within each animal
        keypoints = keypoints.reshape(animals[0], -1, 2)
        if augmentation is not None and augmentation.swap_pairs:
            k = animals[2]
            pairs = tuple((i * k + a, i * k + b) for i in range(animals[1]) for a, b in augmentation.swap_pairs)
            augmentation = dataclasses.replace(augmentation, swap_pairs=pairs)
    if augmentation is not None and augmentation.active:
        window = None
        if crop_size:
            height, width = images.shape[-2:]
            window = partial(
                crop_corners,
                height=height,
                width=width,
                size=crop_size,
                generator=generator,
                background=crop_background,
            )
        images, keypoints = augment_batch(images, keypoints, augmentation, mean, std, generator, window)
    elif crop_size:
        images, keypoints = random_crops(images, keypoints, crop_size, generator, crop_background)
    if animals is not None:
        keypoints = keypoints.reshape(animals[0], animals[1], animals[2], 2)  # (B, I, K, 2)
    height, width = images.shape[-2:]
    pad_h = math.ceil(height / input_multiple) * input_multiple - height
    pad_w = math.ceil(width / input_multiple) * input_multiple - width
    images = F.pad(images, (0, pad_w, 0, pad_h))  # (B, C, H', W'), as prepare_images pads
    map_size = (images.shape[-2] // output_stride, images.shape[-1] // output_stride)
    maps, mask = training_targets(keypoints, map_size, output_stride, sigma_px, skeleton)
    # The padding is no part of the frame: nothing is there, not even a keypoint that augmentation
    # moved just outside the frame on that side (inference never reads these cells).
    maps[..., math.ceil(height / output_stride) :, :] = 0.0
    maps[..., math.ceil(width / output_stride) :] = 0.0
    return {"image": images.contiguous(memory_format=memory_format), "maps": maps, "mask": mask, "keypoints": keypoints}


def random_crops(
    images: torch.Tensor,
    keypoints: torch.Tensor,
    size: int,
    generator: torch.Generator | None = None,
    background: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut every image to a size x size window around one of its labeled keypoints in view, drawn at random.

    The windows are `crop_corners`'. Keypoints are moved into the window's coordinates, those
    that fall outside it too: they stay labeled, so their maps are trained towards zero inside
    the window (the keypoint is known to be elsewhere; a masked map would teach the model
    nothing about the background there). Unlabeled (NaN) keypoints stay NaN.

    Args:
        images: (B, C, H, W).
        keypoints: (B, K, 2) (x, y) in image pixels, NaN where unlabeled.
        size: side of the window in pixels (> 0).
        generator: random source, on the images' device.
        background: fraction of the windows placed anywhere in the image (0 to 1).

    Returns:
        images (B, C, min(size, H), min(size, W)) and keypoints (B, K, 2) in window pixels.
    """
    batch, _, height, width = images.shape
    corner, (crop_h, crop_w) = crop_corners(keypoints, height, width, size, generator, background)
    rows = corner[:, 1, None] + torch.arange(crop_h, device=images.device)  # (B, crop_h)
    cols = corner[:, 0, None] + torch.arange(crop_w, device=images.device)  # (B, crop_w)
    index = torch.arange(batch, device=images.device)[:, None, None]
    crops = images.permute(0, 2, 3, 1)[index, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    moved = keypoints - corner[:, None, :].to(keypoints.dtype)  # (B, K, 2), NaN stays NaN
    return crops.contiguous(), moved


def crop_corners(
    keypoints: torch.Tensor,
    height: int,
    width: int,
    size: int,
    generator: torch.Generator | None = None,
    background: float = 0.0,
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Training windows of size x size pixels in frames of height x width, each around a labeled keypoint in view.

    The window is centred on one such keypoint drawn at random, moved by up to size / 4 in x
    and y (so the keypoint is not always in the middle), then shifted to lie inside the frame.
    A frame with no labeled keypoint in view (augmentation can move keypoints out of the frame)
    gets a window at a random place, and so does each frame with probability `background`:
    without such windows the model never sees the far parts of the frame, and at inference on
    whole frames it can fire on background it was never told holds no keypoint. A side of the
    frame shorter than `size` is kept whole.

    Args:
        keypoints: (B, K, 2) (x, y) in frame pixels, NaN where unlabeled.
        height: the frames' height in pixels.
        width: the frames' width in pixels.
        size: side of the window in pixels (> 0).
        generator: random source, on the keypoints' device.
        background: fraction of the windows placed anywhere in the frame (0 to 1).

    Returns:
        Each window's top-left corner (B, 2) as whole (x, y) pixels (int64), and the windows'
        (height, width): (min(size, height), min(size, width)).
    """
    batch = keypoints.shape[0]
    crop_h, crop_w = min(size, height), min(size, width)
    device = keypoints.device
    x, y = keypoints[..., 0], keypoints[..., 1]  # NaN compares False: unlabeled is never in view
    labeled = (x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5)  # (B, K), labeled and in view
    # One such keypoint per frame, uniformly (Gumbel trick: argmax of noise over them).
    noise = torch.rand(labeled.shape, generator=generator, device=device)
    choice = torch.where(labeled, noise, -1.0).argmax(dim=-1)  # (B,)
    centre = keypoints[torch.arange(batch, device=device), choice]  # (B, 2)
    anywhere = torch.rand((batch, 2), generator=generator, device=device) * torch.tensor(
        [width, height], device=device, dtype=keypoints.dtype
    )
    on_keypoint = labeled.any(dim=-1, keepdim=True)  # (B, 1)
    if background:
        on_keypoint &= torch.rand((batch, 1), generator=generator, device=device) >= background
    centre = torch.where(on_keypoint, centre, anywhere)
    jitter = (torch.rand((batch, 2), generator=generator, device=device) - 0.5) * (size / 2)
    corner = (centre + jitter - torch.tensor([crop_w, crop_h], device=device, dtype=keypoints.dtype) / 2).round()
    left = corner[:, 0].clamp(0, width - crop_w).long()  # (B,)
    top = corner[:, 1].clamp(0, height - crop_h).long()
    return torch.stack([left, top], dim=-1), (crop_h, crop_w)


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
