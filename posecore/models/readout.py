"""A readout of colour: each 4x4 cell's first pixel mapped to K confidence maps by one 1x1 convolution.

Not a pose model: it sees one pixel of each 4x4 cell, so it learns little more than where an
animal's colour is. Its forward costs next to nothing (a strided view and a few
multiply-adds per cell; even averaging the cell cost more than the rest of the pipeline on the
CPU), which is what it is for: measuring the inference pipeline around a model, decoding,
batching, peaks and writing, without the model's own time (`benchmarks/archive.py`).
"""

from __future__ import annotations

import torch
from torch import nn

from posecore.models.inputs import check_input


class ColourReadout(nn.Module):
    """(B, C, H, W) normalised images -> [(B, K, H / 4, W / 4)] maps, from each 4x4 cell's top-left pixel.

    Args:
        n_keypoints: K, the number of maps.
        in_channels: C, image channels.

    Attributes:
        output_stride: 4; map cell (j, i) covers image pixels [4j, 4j + 4) x [4i, 4i + 4).
        input_multiple: 4.
    """

    output_stride = 4
    input_multiple = 4

    def __init__(self, n_keypoints: int, in_channels: int = 3) -> None:
        super().__init__()
        if n_keypoints < 1 or in_channels < 1:
            raise ValueError("n_keypoints and in_channels must be >= 1")
        self.in_channels = in_channels
        self.readout = nn.Conv2d(in_channels, n_keypoints, 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Maps (B, K, H / 4, W / 4) of images (B, C, H, W), as a one-element list (one supervised output)."""
        check_input(x, self.in_channels, self.input_multiple)
        stride = self.output_stride
        return [self.readout(x[..., ::stride, ::stride])]  # (B, K, H / 4, W / 4)
