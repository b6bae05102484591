"""One frame's keypoints from its confidence maps: the decoding that inference and validation share.

Each map's global maximum (`posecore.ops.find_peaks`), then the single-animal prior
(`posecore.ops.single_animal`: peaks that lie off the animal move onto it), then the layout prior
(`posecore.ops.layout`: keypoints found where the training labels never put them relative to the
others move to another maximum of their maps). The priors' statistics come from the training
labels (`ModelMeta.extent_px`, `ModelMeta.offset_ranges`); without them a prior is off.
Training's `val/rmse_px` decodes this way too, so the best checkpoint is the one whose decoded
keypoints are best, not the one whose global maxima are.
"""

from __future__ import annotations

import torch

from posecore.ops.layout import peaks_in_layout
from posecore.ops.peaks import find_peaks
from posecore.ops.single_animal import MARGIN, peaks_on_the_animal


def decode_peaks(
    maps: torch.Tensor,
    stride: int,
    extent_px: float = 0.0,
    offset_ranges: tuple[tuple[int, int, float, float, float, float], ...] = (),
) -> torch.Tensor:
    """(B, K, 3) peaks as (x, y, score) in map cells from (B, K, H, W) confidence maps.

    Args:
        maps: float confidence maps, any device.
        stride: image pixels per map cell.
        extent_px: the animal's largest extent in the training labels, in image pixels (0: the
            single-animal prior is off).
        offset_ranges: `posecore.ops.layout.offset_ranges` of the training labels, in image
            pixels (empty: the layout prior is off).
    """
    maps = maps.float().contiguous()
    peaks = find_peaks(maps)  # (B, K, 3), each map's global maximum
    peaks = peaks_on_the_animal(maps, peaks, MARGIN * extent_px / stride)
    return peaks_in_layout(maps, peaks, offset_ranges, stride)
