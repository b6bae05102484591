"""What the peak finders share: the floor of the log fit and the check of the maps they accept.

`posecore.ops.peaks` (the reference and the dispatcher) and `posecore.ops.peaks_triton` (the
kernel) both import this module; the dispatcher in `peaks` imports the kernel lazily, and the
kernel never imports `peaks`: every import is one-way.
"""

from __future__ import annotations

import torch

LOG_FLOOR = 1e-10
"""Values at or below this count as this in the log-quadratic fit."""


def check_maps(maps: torch.Tensor) -> torch.Tensor:
    """Validate confidence maps (B, K, H, W); return them as float32, float16 or bfloat16.

    Raises:
        ValueError: when `maps` is not a 4-d floating tensor with H, W >= 1.
    """
    if not isinstance(maps, torch.Tensor) or maps.ndim != 4:
        shape = tuple(maps.shape) if isinstance(maps, torch.Tensor) else type(maps).__name__
        raise ValueError(f"confidence maps must be a (B, K, H, W) tensor, got {shape}")
    if not maps.is_floating_point():
        raise ValueError(f"confidence maps must be floating point, got {maps.dtype}")
    if maps.shape[2] == 0 or maps.shape[3] == 0:
        raise ValueError(f"confidence maps must have H, W >= 1, got shape {tuple(maps.shape)}")
    if maps.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        maps = maps.float()
    return maps
