"""The input check every model's `forward` starts with."""

from __future__ import annotations

import torch


def check_input(x: torch.Tensor, in_channels: int, input_multiple: int) -> None:
    """Refuse an input that is not (B, in_channels, H, W) with H and W multiples of `input_multiple`."""
    if x.ndim != 4 or x.shape[1] != in_channels:
        raise ValueError(f"expected input (B, {in_channels}, H, W), got {tuple(x.shape)}")
    height, width = x.shape[-2:]
    if height % input_multiple or width % input_multiple:
        raise ValueError(
            f"input size {height}x{width} is not a multiple of {input_multiple}: pad it first "
            "(posecore.predict.prepare_images does)"
        )
