"""Keypoints from images with an exported model: the one path that evaluation and video inference share.

Steps, per batch: uint8 (B, H, W, C) -> float, normalised with the model's mean and std ->
padded at the bottom and right to a multiple of the model's `input_multiple` (so pixel
coordinates do not move) -> forward under `torch.inference_mode()` -> the final stack's maps,
cropped to the cells that cover the image -> `posecore.ops.find_peaks` (map cells) ->
`posecore.geometry.map_to_image` (image pixels). Training prepares its images with the same
`prepare_images`, so training and inference cannot differ in preprocessing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from torch.nn import functional as F

from posecore.geometry import map_to_image
from posecore.models.export import LoadedModel
from posecore.ops import find_peaks


def resolve_device(device: Literal["auto", "cpu", "cuda"]) -> str:
    """The torch device for a config's `device`: auto takes a GPU when one is visible."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but torch sees no GPU")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}; known: auto, cpu, cuda")
    return device


def prepare_images(
    images: np.ndarray | torch.Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    multiple: int,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Normalise uint8 images and pad them to a multiple of `multiple`.

    Args:
        images: uint8 (B, H, W, C), or (B, H, W) for one channel.
        mean: per-channel mean (C) in uint8 units.
        std: per-channel standard deviation (C) in uint8 units.
        multiple: H and W are padded at the bottom and right up to a multiple of it; padded
            pixels are 0 after normalisation (the mean colour).
        device: where the result lives (the uint8 batch is moved first, which is cheaper).

    Returns:
        float32 (B, C, H', W') with H' and W' multiples of `multiple`.
    """
    batch = torch.as_tensor(images)
    if batch.ndim == 3:
        batch = batch.unsqueeze(-1)  # (B, H, W, 1)
    if batch.ndim != 4 or batch.dtype != torch.uint8:
        raise ValueError(f"images must be uint8 (B, H, W, C), got {batch.dtype} {tuple(batch.shape)}")
    if batch.shape[-1] != len(mean):
        raise ValueError(f"images have {batch.shape[-1]} channels, the model takes {len(mean)}")
    batch = batch.to(device, non_blocking=True).permute(0, 3, 1, 2).float()  # (B, C, H, W)
    mean_t = torch.tensor(mean, dtype=torch.float32, device=batch.device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=batch.device).view(1, -1, 1, 1)
    batch = (batch - mean_t) / std_t
    height, width = batch.shape[-2:]
    pad_h = math.ceil(height / multiple) * multiple - height
    pad_w = math.ceil(width / multiple) * multiple - width
    if pad_h or pad_w:
        batch = F.pad(batch, (0, pad_w, 0, pad_h))  # (B, C, H', W')
    return batch.contiguous()


class Predictor:
    """Keypoints (x, y, score) in image pixels from uint8 images, with one loaded model.

    Args:
        loaded: a model from `posecore.models.load_model`.
        device: "cpu", "cuda" or "cuda:N"; the model is moved there.
        batch_size: images per forward pass.
    """

    def __init__(self, loaded: LoadedModel, device: str | torch.device = "cpu", batch_size: int = 16) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.loaded = loaded
        self.meta = loaded.meta
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.model = loaded.model.to(self.device).eval()
        self.stride = int(self.meta.output_stride)
        self.multiple = int(getattr(self.model, "input_multiple", self.stride))

    @property
    def keypoint_names(self) -> tuple[str, ...]:
        """The K keypoint names, in the order of the predictions' second axis."""
        return self.meta.keypoint_names

    def predict(self, images: np.ndarray | torch.Tensor) -> np.ndarray:
        """Predict keypoints.

        Args:
            images: uint8 (B, H, W, C) (or (B, H, W) for grey models), any H and W.

        Returns:
            float32 (B, K, 3): x (column), y (row) in image pixels with the centre of the top-left
            pixel at (0, 0), and the confidence-map peak value as score.
        """
        n = len(images)
        out = np.empty((n, self.meta.n_keypoints, 3), dtype=np.float32)
        for start in range(0, n, self.batch_size):
            batch = images[start : start + self.batch_size]
            out[start : start + len(batch)] = self._predict_batch(batch).cpu().numpy()
        return out

    @torch.inference_mode()
    def _predict_batch(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) uint8 -> (B, K, 3) in image pixels, on the model's device."""
        height, width = images.shape[1], images.shape[2]
        x = prepare_images(images, self.meta.mean, self.meta.std, self.multiple, self.device)
        maps = self.model(x)[-1]  # (B, K, H' / s, W' / s), the final stack
        maps = maps[..., : math.ceil(height / self.stride), : math.ceil(width / self.stride)]  # cells over the image
        peaks = find_peaks(maps.float())  # (B, K, 3) in map cells
        xy = map_to_image(peaks[..., :2], self.stride)  # (B, K, 2) image pixels
        return torch.cat([xy, peaks[..., 2:]], dim=-1)
