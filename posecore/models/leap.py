"""LEAP's network (Pereira et al. 2019): a small encoder-decoder with maps at full resolution.

With its defaults this is LEAP's `leap_cnn` (talmo/leap, leap/models.py; DeepPoseKit's `LEAP`
is the same), layer for layer. Encoder: `n_downsampling + 1` blocks of `convs_per_block` 3x3
convolutions with ReLU, of `filters`, 2 x `filters`, 4 x `filters`, ... channels, each block
but the last followed by a 2x2 max-pool. Decoder: per downsampling but the last, a stride-2
3x3 transposed convolution (ReLU) that halves the channels and doubles the resolution,
followed by `convs_per_block - 1` 3x3 convolutions; then a last stride-2 3x3 transposed
convolution straight to the K maps, linear (`output_layer="transposed"`). Kernels are
initialised as Keras does (glorot, biases 0). There are no skip connections and one supervised
output, at the input's resolution (output stride 1). LEAP trains without batch normalisation;
`batch_norm` adds it after every convolution, which trains faster from scratch.

`output_layer="conv"` is posecore's earlier decoder (exported-model format 1): the last
upsampling is a decoder level like the others (transposed convolution to `filters` channels,
then `convs_per_block - 1` convolutions at full resolution) followed by a 1x1 convolution to
the maps, PyTorch's default initialisation. What it costs against LEAP's: docs/models.md.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from posecore.models.inputs import check_input
from posecore.models.keras_init import glorot_uniform_

OUTPUT_LAYERS = ("transposed", "conv")


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
        output_layer: "transposed" (LEAP's: the last upsampling goes straight to the maps) or
            "conv" (posecore's earlier decoder, see the module docstring).

    Attributes:
        output_stride: 1; map cell j is image pixel j.
        input_multiple: H and W of the input must be multiples of it (the predictor pads).
    """

    output_stride = 1

    # The values each hyperparameter may take, checked when the config is read (before any job),
    # without importing torch: posecore.models.registry reads this literal from the source.
    HYPERPARAMETER_RANGES: ClassVar[dict[str, tuple]] = {
        "filters": ((">=", 1),),
        "n_downsampling": ((">=", 0),),
        "convs_per_block": ((">=", 1),),
    }

    def __init__(
        self,
        n_keypoints: int,
        in_channels: int = 1,
        filters: int = 64,
        n_downsampling: int = 2,
        convs_per_block: int = 3,
        batch_norm: bool = False,
        output_layer: str = "transposed",
    ) -> None:
        super().__init__()
        if n_keypoints < 1 or in_channels < 1 or filters < 1 or convs_per_block < 1:
            raise ValueError("n_keypoints, in_channels, filters and convs_per_block must be >= 1")
        if output_layer not in OUTPUT_LAYERS:
            raise ValueError(f"output_layer must be one of {', '.join(OUTPUT_LAYERS)}, got {output_layer!r}")
        if n_downsampling < (1 if output_layer == "transposed" else 0):
            raise ValueError(f"n_downsampling must be >= 1 (0 with output_layer 'conv'), got {n_downsampling}")
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
        for level in reversed(range(1 if output_layer == "transposed" else 0, n_downsampling)):
            width = filters * 2**level
            decoder.append(_upsample(channels, width))  # (2h, 2w)
            decoder.append(nn.ReLU(inplace=True))
            if convs_per_block > 1:
                decoder.append(_conv_block(width, width, convs_per_block - 1, batch_norm))
            channels = width
        self.decoder = nn.Sequential(*decoder)
        if output_layer == "transposed":
            self.head = _upsample(channels, n_keypoints)  # (B, K, H, W)
            for module in self.modules():  # LEAP's: glorot_normal transposed convolutions, Keras' glorot_uniform others
                if isinstance(module, nn.ConvTranspose2d):
                    nn.init.xavier_normal_(module.weight)
                    nn.init.zeros_(module.bias)
                elif isinstance(module, nn.Conv2d):
                    glorot_uniform_(module)
        else:
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


def _upsample(in_channels: int, out_channels: int) -> nn.ConvTranspose2d:
    """3x3 stride-2 transposed convolution, Keras' 'same': (B, C_in, h, w) -> (B, C_out, 2h, 2w)."""
    return nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1)
