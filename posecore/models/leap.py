"""LEAP's network (Pereira et al. 2019): a small encoder-decoder with maps at full resolution.

Encoder: `n_downsampling + 1` blocks of `convs_per_block` 3x3 convolutions with ReLU, of
`filters`, 2 x `filters`, 4 x `filters`, ... channels, each block but the last followed by a
2x2 max-pool. Decoder: per downsampling, a stride-2 transposed convolution that halves the
channels and doubles the resolution, followed by `convs_per_block - 1` 3x3 convolutions; then
a 1x1 convolution to K maps with a linear output. There are no skip connections and one
supervised output, at the input's resolution (output stride 1). LEAP trains without batch
normalisation; `batch_norm` adds it after every convolution, which trains faster from scratch.
"""

from __future__ import annotations

import torch
from torch import nn

from posecore.models.inputs import check_input


def _conv_block(in_channels: int, out_channels: int, n_convs: int, batch_norm: bool) -> nn.Sequential:
    """`n_convs` 3x3 'same' convolutions with ReLU (and BatchNorm): (B, C_in, H, W) -> (B, C_out, H, W)."""
    layers: list[nn.Module] = []
    for i in range(n_convs):
        layers.append(
            nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3, padding=1, bias=not batch_norm)
        )
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class LEAPNet(nn.Module):
    """LEAP's fully convolutional network: images to K confidence maps at full resolution.

    Args:
        n_keypoints: K, the number of confidence maps.
        in_channels: C, image channels (LEAP works on grey frames: 1).
        filters: channels of the first block (LEAP: 64); each deeper block doubles them.
        n_downsampling: max-pools in the encoder (LEAP: 2); H and W must be multiples of
            `input_multiple = 2 ** n_downsampling`.
        convs_per_block: 3x3 convolutions per encoder block (LEAP: 3).
        batch_norm: add BatchNorm after every convolution (LEAP: no).

    Attributes:
        output_stride: 1; map cell j is image pixel j.
        input_multiple: H and W of the input must be multiples of it (the predictor pads).
    """

    output_stride = 1

    def __init__(
        self,
        n_keypoints: int,
        in_channels: int = 1,
        filters: int = 64,
        n_downsampling: int = 2,
        convs_per_block: int = 3,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        if n_keypoints < 1 or in_channels < 1 or filters < 1 or convs_per_block < 1:
            raise ValueError("n_keypoints, in_channels, filters and convs_per_block must be >= 1")
        if n_downsampling < 0:
            raise ValueError(f"n_downsampling must be >= 0, got {n_downsampling}")
        self.n_keypoints = n_keypoints
        self.in_channels = in_channels
        self.input_multiple = 2**n_downsampling
        encoder: list[nn.Module] = []
        channels = in_channels
        for level in range(n_downsampling + 1):
            width = filters * 2**level
            encoder.append(_conv_block(channels, width, convs_per_block, batch_norm))
            if level < n_downsampling:
                encoder.append(nn.MaxPool2d(2))  # (B, width, h / 2, w / 2)
            channels = width
        self.encoder = nn.Sequential(*encoder)
        decoder: list[nn.Module] = []
        for level in reversed(range(n_downsampling)):
            width = filters * 2**level
            decoder.append(nn.ConvTranspose2d(channels, width, 3, stride=2, padding=1, output_padding=1))  # (2h, 2w)
            decoder.append(nn.ReLU(inplace=True))
            if convs_per_block > 1:
                decoder.append(_conv_block(width, width, convs_per_block - 1, batch_norm))
            channels = width
        self.decoder = nn.Sequential(*decoder)
        self.head = nn.Conv2d(channels, n_keypoints, 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Confidence maps at the input's resolution.

        Args:
            x: normalised float images (B, C, H, W), H and W multiples of `input_multiple`.

        Returns:
            A one-element list: (B, K, H, W).
        """
        check_input(x, self.in_channels, self.input_multiple)
        return [self.head(self.decoder(self.encoder(x)))]  # [(B, K, H, W)]
