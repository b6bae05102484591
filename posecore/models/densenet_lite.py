"""posecore's lighter Stacked DenseNet: DeepPoseKit's plan (Graving et al. 2019) with DenseNet-BC layers.

This is the network config/config.yaml trains by default (`densenet_lite`; up to exported-model
format 1 it was called `stacked_densenet`). It keeps the plan of DeepPoseKit's Stacked DenseNet
(`posecore.models.densenet`, which is DeepPoseKit's own, layer for layer): stacked FC-DenseNet
encoder-decoders from 1/4 of the image, multi-scale skips, intermediate supervision, each stack
reading the previous one's maps. It differs in the layers (docs/models.md: which, and what that saves).

The network has three parts:

- a front end that takes the image to 1/4 of its size: a 7x7 convolution with stride 2 and a
  3x3 max-pool with stride 2 (as in DenseNet), then a dense block and a compression;
- `n_stacks` fully convolutional DenseNet encoder-decoders (FC-DenseNet "hourglasses"), each
  going down `n_transitions` times by 2 and back up to 1/4, joining every scale of the
  encoder to the decoder by concatenation (multi-scale), with a compression after every block
  so that the channel count stays near `growth_rate * layers_per_block`;
- one output head per stack (a 1x1 convolution to K confidence maps), so every stack is
  supervised (intermediate supervision). The next stack reads the concatenation of the
  previous stack's input, its decoder features and its maps, compressed (DenseNet-style reuse
  across stacks).

Dense layers are DenseNet-BC layers: BN-ReLU-1x1 convolution (bottleneck) then BN-ReLU-3x3
convolution to `growth_rate` channels, concatenated to the layer's input.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from posecore.models.inputs import check_input


def _bn_relu_conv(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    """Pre-activation convolution: BatchNorm, ReLU, then a 'same' convolution without bias."""
    return nn.Sequential(
        nn.BatchNorm2d(in_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
    )


class DenseLayer(nn.Module):
    """One DenseNet-BC layer: (B, C, H, W) -> (B, C + growth_rate, H, W)."""

    def __init__(self, in_channels: int, growth_rate: int, bottleneck_factor: int) -> None:
        super().__init__()
        width = bottleneck_factor * growth_rate
        self.layers = nn.Sequential(
            _bn_relu_conv(in_channels, width, 1),
            _bn_relu_conv(width, growth_rate, 3),
        )
        self.out_channels = in_channels + growth_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Append `growth_rate` new feature maps to `x`."""
        return torch.cat([x, self.layers(x)], dim=1)


class DenseBlock(nn.Sequential):
    """`n_layers` dense layers: (B, C, H, W) -> (B, C + n_layers * growth_rate, H, W)."""

    def __init__(self, in_channels: int, n_layers: int, growth_rate: int, bottleneck_factor: int) -> None:
        layers = []
        channels = in_channels
        for _ in range(n_layers):
            layers.append(DenseLayer(channels, growth_rate, bottleneck_factor))
            channels = layers[-1].out_channels
        super().__init__(*layers)
        self.out_channels = channels


class Compression(nn.Sequential):
    """BN-ReLU-1x1 convolution keeping a `compression` fraction of the channels."""

    def __init__(self, in_channels: int, compression: float) -> None:
        out_channels = max(1, int(in_channels * compression))
        super().__init__(*_bn_relu_conv(in_channels, out_channels, 1))
        self.out_channels = out_channels


class DenseHourglass(nn.Module):
    """FC-DenseNet encoder-decoder at one resolution: (B, C, h, w) -> (B, out_channels, h, w).

    h and w must be multiples of 2 ** n_transitions.
    """

    def __init__(
        self,
        in_channels: int,
        n_transitions: int,
        layers_per_block: int,
        growth_rate: int,
        bottleneck_factor: int,
        compression: float,
    ) -> None:
        super().__init__()

        def block(channels: int) -> DenseBlock:
            return DenseBlock(channels, layers_per_block, growth_rate, bottleneck_factor)

        self.down_blocks = nn.ModuleList()
        self.down_compressions = nn.ModuleList()
        skip_channels = []
        channels = in_channels
        for _ in range(n_transitions):
            self.down_blocks.append(block(channels))
            skip_channels.append(self.down_blocks[-1].out_channels)
            self.down_compressions.append(Compression(skip_channels[-1], compression))
            channels = self.down_compressions[-1].out_channels
        self.bottom = block(channels)
        channels = self.bottom.out_channels
        self.up_blocks = nn.ModuleList()
        self.up_compressions = nn.ModuleList()
        for skip in reversed(skip_channels):
            self.up_blocks.append(block(channels + skip))
            self.up_compressions.append(Compression(self.up_blocks[-1].out_channels, compression))
            channels = self.up_compressions[-1].out_channels
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode down `n_transitions` scales and decode back, concatenating each scale's skip."""
        skips = []
        for block, compress in zip(self.down_blocks, self.down_compressions, strict=True):
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(compress(x), 2)  # (B, C', h / 2, w / 2)
        x = self.bottom(x)
        for block, compress, skip in zip(self.up_blocks, self.up_compressions, reversed(skips), strict=True):
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")  # (B, C, 2h, 2w), the skip's size
            x = compress(block(torch.cat([x, skip], dim=1)))
        return x


class StackedDenseNetLite(nn.Module):
    """posecore's lighter Stacked DenseNet: images to one set of K confidence maps per stack.

    Args:
        n_keypoints: K, the number of confidence maps each stack outputs.
        in_channels: C, image channels (3 for RGB, 1 for grey).
        n_stacks: encoder-decoders in sequence, each supervised.
        growth_rate: feature maps added by each dense layer.
        compression: fraction of channels kept by each compression (0 < compression <= 1).
        n_transitions: times each encoder halves the 1/4-resolution features; H and W must be
            multiples of `input_multiple = 4 * 2 ** n_transitions`.
        layers_per_block: dense layers in each dense block.
        bottleneck_factor: width of the 1x1 bottleneck convolution, in multiples of growth_rate.

    Attributes:
        output_stride: 4; map cell j covers image pixels [4j, 4j + 4) (see posecore.geometry).
        input_multiple: H and W of the input must be multiples of it (the predictor pads).
    """

    output_stride = 4

    # The values each hyperparameter may take, checked when the config is read (before any job),
    # without importing torch: posecore.models.registry reads this literal from the source.
    HYPERPARAMETER_RANGES: ClassVar[dict[str, tuple]] = {
        "n_stacks": ((">=", 1),),
        "growth_rate": ((">=", 1),),
        "compression": ((">", 0), ("<=", 1)),
        "n_transitions": ((">=", 1),),
        "layers_per_block": ((">=", 1),),
        "bottleneck_factor": ((">=", 1),),
    }

    def __init__(
        self,
        n_keypoints: int,
        in_channels: int = 3,
        n_stacks: int = 2,
        growth_rate: int = 32,
        compression: float = 0.5,
        n_transitions: int = 3,
        layers_per_block: int = 1,
        bottleneck_factor: int = 1,
    ) -> None:
        super().__init__()
        if n_keypoints < 1 or in_channels < 1 or n_stacks < 1 or growth_rate < 1:
            raise ValueError("n_keypoints, in_channels, n_stacks and growth_rate must all be >= 1")
        if not 0.0 < compression <= 1.0:
            raise ValueError(f"compression must be in (0, 1], got {compression}")
        if n_transitions < 0 or layers_per_block < 1 or bottleneck_factor < 1:
            raise ValueError("n_transitions must be >= 0, layers_per_block and bottleneck_factor >= 1")
        self.n_keypoints = n_keypoints
        self.in_channels = in_channels
        self.input_multiple = self.output_stride * 2**n_transitions

        # Front end: (B, C, H, W) -> (B, c0, H / 4, W / 4).
        stem = 2 * growth_rate
        front_block = DenseBlock(stem, layers_per_block, growth_rate, bottleneck_factor)
        front_compression = Compression(front_block.out_channels, compression)
        self.front = nn.Sequential(
            nn.Conv2d(in_channels, stem, 7, stride=2, padding=3, bias=False),  # (B, 2g, H / 2, W / 2)
            nn.BatchNorm2d(stem),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),  # (B, 2g, H / 4, W / 4)
            front_block,
            front_compression,
        )
        channels = front_compression.out_channels

        self.hourglasses = nn.ModuleList()
        self.heads = nn.ModuleList()
        self.merges = nn.ModuleList()
        for stack in range(n_stacks):
            hourglass = DenseHourglass(
                channels, n_transitions, layers_per_block, growth_rate, bottleneck_factor, compression
            )
            self.hourglasses.append(hourglass)
            self.heads.append(
                nn.Sequential(
                    nn.BatchNorm2d(hourglass.out_channels),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(hourglass.out_channels, n_keypoints, 1),
                )
            )
            if stack < n_stacks - 1:
                merge = Compression(channels + hourglass.out_channels + n_keypoints, compression)
                self.merges.append(merge)
                channels = merge.out_channels

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Confidence maps of every stack.

        Args:
            x: normalised float images (B, C, H, W), H and W multiples of `input_multiple`.

        Returns:
            One (B, K, H / 4, W / 4) tensor per stack, in order; the last is the final output.
        """
        check_input(x, self.in_channels, self.input_multiple)
        features = self.front(x)  # (B, c0, H / 4, W / 4)
        outputs = []
        for stack, (hourglass, head) in enumerate(zip(self.hourglasses, self.heads, strict=True)):
            decoded = hourglass(features)
            maps = head(decoded)  # (B, K, H / 4, W / 4)
            outputs.append(maps)
            if stack < len(self.merges):
                features = self.merges[stack](torch.cat([features, decoded, maps], dim=1))
        return outputs
