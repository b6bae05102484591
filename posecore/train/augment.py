"""On-the-fly augmentation of training batches, in plain torch, on whatever device the batch is on.

`augment_batch(images, keypoints, augmentation, mean, std, generator, window)` takes a
normalised batch (B, C, H, W) with its keypoints (B, K, 2) as (x, y) pixels and returns both
transformed as `augmentation` (`posecore.train.config.Augmentation`, re-exported here) draws,
per frame, from one `torch.Generator`, so a seeded run repeats exactly: first one affine warp
(flips, rotation and zoom about the image centre, then a shift; with training crops only each
frame's window is sampled), then brightness, contrast, blur and noise, clipped to what a uint8
frame holds. A frame mirrored exactly once exchanges its `swap_pairs`; keypoints moved out of the
image keep their coordinates and stay labeled. The training module calls it once the batch is
on the accelerator (`on_after_batch_transfer`). Why keypoints outside stay labeled:
docs/training.md, "Augmentation".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch.nn import functional as F

from posecore.train.config import Augmentation

__all__ = ["Augmentation", "Window", "augment_batch"]


# Windows of a batch, from its keypoints (B, K, 2) as the geometric transforms moved them: each
# window's top-left corner (B, 2) as whole (x, y) pixels, and the (height, width) of them all.
Window = Callable[[torch.Tensor], tuple[torch.Tensor, tuple[int, int]]]


def augment_batch(
    images: torch.Tensor,
    keypoints: torch.Tensor,
    augmentation: Augmentation,
    mean: Sequence[float],
    std: Sequence[float],
    generator: torch.Generator | None = None,
    window: Window | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment a normalised batch and move its keypoints with it.

    Args:
        images: float (B, C, H, W), normalised as (uint8 - mean) / std.
        keypoints: (B, K, 2) as (x, y) in pixels, NaN where unlabeled.
        augmentation: what to draw.
        mean: per-channel mean (C) in uint8 units, as used to normalise.
        std: per-channel standard deviation (C) in uint8 units.
        generator: the random source, on the images' device (None: torch's default one).
        window: with training crops, chooses each frame's window in the warped frame
            (`posecore.train.data.crop_corners`); only the windows are sampled.

    Returns:
        The augmented images (B, C, H, W), or their windows (B, C, h, w), and the keypoints
        (B, K, 2) in their pixels, on the input's device.
    """
    if augmentation.flip == "auto":
        raise ValueError("train.flip 'auto' must be decided from the labels first (posecore.train.auto.resolve_auto)")
    if not augmentation.active and window is None:
        return images, keypoints
    if augmentation.geometric or window is not None:
        images, keypoints = _geometric(images, keypoints.to(images.device).float(), augmentation, generator, window)
    if augmentation.photometric:
        std_t = torch.tensor(std, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)  # (1, C, 1, 1)
        mean_t = torch.tensor(mean, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)
        images = _photometric(images, augmentation, mean_t, std_t, generator)
    return images, keypoints


def _uniform(n: int, low: float, high: float, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Draws (n,) from U[low, high) on the device and dtype of `like`."""
    return low + (high - low) * torch.rand(n, generator=generator, device=like.device, dtype=like.dtype)


def _photometric(
    images: torch.Tensor,
    augmentation: Augmentation,
    mean: torch.Tensor,
    std: torch.Tensor,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Brightness, contrast, blur and noise on a normalised batch (B, C, H, W); std, mean (1, C, 1, 1)."""
    b = images.shape[0]
    a = augmentation
    if a.brightness > 0:
        offset = _uniform(b, -a.brightness, a.brightness, images, generator).view(b, 1, 1, 1) * 255.0
        images = images + offset / std
    if a.contrast > 0:
        factor = _uniform(b, 1 - a.contrast, 1 + a.contrast, images, generator).view(b, 1, 1, 1)
        frame_mean = images.mean(dim=(-2, -1), keepdim=True)  # (B, C, 1, 1)
        images = (images - frame_mean) * factor + frame_mean
    if a.blur_sigma_px > 0:
        images = _blur(images, _uniform(b, 0.0, a.blur_sigma_px, images, generator), a.blur_sigma_px)
    if a.noise_std > 0:
        level = _uniform(b, 0.0, a.noise_std, images, generator).view(b, 1, 1, 1) * 255.0
        noise = torch.randn(images.shape, generator=generator, device=images.device, dtype=images.dtype)
        images = images + noise * level / std
    return torch.maximum(torch.minimum(images, (255.0 - mean) / std), -mean / std)  # what uint8 can hold


def _blur(images: torch.Tensor, sigma: torch.Tensor, max_sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with one sigma (pixels) per frame: (B, C, H, W) -> (B, C, H, W)."""
    b, c, h, w = images.shape
    radius = max(1, math.ceil(3 * max_sigma))
    offsets = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)  # (k,)
    kernel = torch.exp(-(offsets**2) / (2 * sigma.clamp_min(1e-3).view(b, 1) ** 2))  # (B, k); sigma ~0: identity
    kernel = (kernel / kernel.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0)  # (B * C, k)
    x = images.reshape(1, b * c, h, w)  # one group per frame and channel
    x = F.pad(x, (radius, radius, 0, 0), mode="replicate")
    x = F.conv2d(x, kernel.view(b * c, 1, 1, -1), groups=b * c)  # along rows
    x = F.pad(x, (0, 0, radius, radius), mode="replicate")
    x = F.conv2d(x, kernel.view(b * c, 1, -1, 1), groups=b * c)  # along columns
    return x.view(b, c, h, w)


def _geometric(
    images: torch.Tensor,
    keypoints: torch.Tensor,
    augmentation: Augmentation,
    generator: torch.Generator | None,
    window: Window | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One random affine warp per frame (or window); keypoints follow (outside the frame too), swap on one mirror."""
    b, _, h, w = images.shape
    a = augmentation
    ones = torch.ones(b, device=images.device, dtype=torch.float32)
    flip_x = torch.where(_uniform(b, 0, 1, ones, generator) < 0.5, -1.0, 1.0) if a.flip else ones
    flip_y = torch.where(_uniform(b, 0, 1, ones, generator) < 0.5, -1.0, 1.0) if a.flip_vertical else ones
    theta = torch.deg2rad(_uniform(b, -a.rotation_deg, a.rotation_deg, ones, generator))  # (B,)
    zoom = _uniform(b, 1 - a.scale, 1 + a.scale, ones, generator)  # (B,)
    shift = torch.stack([_uniform(b, -a.translation_px, a.translation_px, ones, generator) for _ in "xy"], dim=-1)
    cos, sin = torch.cos(theta), torch.sin(theta)
    # Forward map p' = M (p - c) + c + t with M = zoom * R * diag(flip_x, flip_y); y points down,
    # so R = [[cos, sin], [-sin, cos]] turns counter-clockwise on screen.
    rotation = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)  # (B, 2, 2)
    matrix = zoom.view(b, 1, 1) * rotation * torch.stack([flip_x, flip_y], -1).view(b, 1, 2)  # (B, 2, 2)
    centre = torch.tensor([(w - 1) / 2, (h - 1) / 2], device=images.device)  # (2,) as (x, y)

    moved = torch.einsum("bij,bkj->bki", matrix, keypoints - centre) + centre + shift.view(b, 1, 2)  # (B, K, 2)
    if a.swap_pairs and (a.flip or a.flip_vertical):
        order = torch.arange(keypoints.shape[1], device=images.device)
        swapped = order.clone()
        for left, right in a.swap_pairs:
            swapped[left], swapped[right] = order[right], order[left]
        mirrored = (flip_x * flip_y) < 0  # (B,), mirrored exactly once
        index = torch.where(mirrored.view(b, 1), swapped.view(1, -1), order.view(1, -1))  # (B, K)
        moved = torch.gather(moved, 1, index.unsqueeze(-1).expand(-1, -1, 2))

    corner, (out_h, out_w) = (torch.zeros(b, 2, device=images.device), (h, w)) if window is None else window(moved)
    corner = corner.to(torch.float32)
    moved = moved - corner.view(b, 1, 2)
    # Sampling grid: for each output pixel p' (of the window), the input pixel p = M^-1 (p' - c - t) + c.
    ys, xs = torch.meshgrid(
        torch.arange(out_h, dtype=torch.float32, device=images.device),
        torch.arange(out_w, dtype=torch.float32, device=images.device),
        indexing="ij",
    )
    out_xy = torch.stack([xs, ys], dim=-1).view(1, -1, 2) + (corner - centre - shift).view(b, 1, 2)  # (B, P, 2)
    in_xy = torch.einsum("bij,bpj->bpi", torch.linalg.inv(matrix), out_xy) + centre  # (B, P, 2)
    size = torch.tensor([w, h], dtype=torch.float32, device=images.device)
    grid = ((2 * in_xy + 1) / size - 1).view(b, out_h, out_w, 2)  # in [-1, 1], align_corners=False
    warped = F.grid_sample(images, grid.to(images.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)
    return warped, moved
