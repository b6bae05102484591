"""DeepPoseKit's Stacked DenseNet (Graving et al. 2019), layer for layer, in PyTorch.

This is the network of DeepPoseKit 0.3.9's `StackedDenseNet` (pretrained=False) with its
TrainingGenerator at `downsample_factor=2` (maps at 1/4 of the image): the same convolutions,
widths, activations, initialisation and outputs, so the same parameter count. In short:

- every convolution is 'same', with a bias, followed by SELU (lecun-normal initialised), and
  there is no BatchNorm inside the network (only on the maps passed from stack to stack);
- a "dense convolution" is a 1x1 convolution to `growth_rate * bottleneck_factor` channels and a
  3x3 convolution to its growth, appended to its input; a block at depth d grows by
  `growth_rate * min(d, 3)` in one such convolution (DeepPoseKit's `DenseConvBlock`);
- compressions (1x1) keep round(C x `compression_factor`) channels; downward transitions
  max-pool then compress; upward transitions compress to a multiple of 4 then move channels to
  space (2x2 sub-pixel upscaling);
- the front end joins a strided 7x7 convolution with the input rearranged space-to-depth,
  reaches 1/4 through one dense convolution and transition, and concatenates a pooled
  shortcut of its first features with its last (each compressed); a 1x1 convolution of it is
  the first output (`output_0`);
- each of `n_stacks` fully convolutional DenseNets goes down `n_transitions` times by 2 from
  1/4 and back, joining each scale's compressed encoder features to the decoder; its output,
  the front end's features with the BatchNorm of the first maps, and the BatchNorm of the
  previous maps are concatenated into the stack's maps (a 1x1 convolution) and into the next
  stack's input.

Every output is supervised: `forward` returns `n_stacks + 1` maps, the front end's first.

`n_transitions` counts the halvings of each encoder-decoder below the maps (DeepPoseKit's value
minus 2). How this follows DeepPoseKit, and the details that differ: docs/models.md.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from posecore.models.inputs import check_input
from posecore.models.keras_init import batch_norm, glorot_uniform_, lecun_normal_

DOWNSAMPLE_FACTOR = 2  # DeepPoseKit's TrainingGenerator.downsample_factor: maps at 1/2**2 of the image


class SeluConv(nn.Sequential):
    """'Same' convolution with bias then SELU, lecun-normal initialised: (B, C_in, H, W) -> (B, C_out, H / s, W / s)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> None:
        conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2)
        super().__init__(lecun_normal_(conv), nn.SELU(inplace=True))
        self.out_channels = out_channels


class DenseConv(nn.Module):
    """DeepPoseKit's DenseConv2D: (B, C, H, W) -> (B, C + growth, H, W), the input with `growth` new maps appended."""

    def __init__(self, in_channels: int, growth: int, bottleneck_factor: float) -> None:
        super().__init__()
        bottleneck = round(growth * bottleneck_factor)
        self.layers = nn.Sequential(SeluConv(in_channels, bottleneck, 1), SeluConv(bottleneck, growth, 3))
        self.out_channels = in_channels + growth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Append the new maps."""
        return torch.cat([x, self.layers(x)], dim=1)


def _block_growth(growth_rate: int, depth: int) -> int:
    """Growth of DeepPoseKit's DenseConvBlock(growth_rate, n_layers=depth): growth_rate x min(depth, 3)."""
    return growth_rate * min(max(depth, 1), 3)


def _compressed(channels: int, compression_factor: float) -> int:
    """round(C x factor), rounding half to even as numpy does (Python's round does the same)."""
    return max(1, round(channels * compression_factor))


class TransitionDown(nn.Module):
    """Max-pool by `pool`, then compress: (B, C, H, W) -> (B, round(C x factor), H / pool, W / pool)."""

    def __init__(self, in_channels: int, compression_factor: float, pool: int = 2) -> None:
        super().__init__()
        self.pool = pool
        self.compress = SeluConv(in_channels, _compressed(in_channels, compression_factor), 1)
        self.out_channels = self.compress.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pool, then the 1x1 compression."""
        return self.compress(F.max_pool2d(x, self.pool))


class TransitionUp(nn.Module):
    """Compress to a multiple of 4, then 2x2 sub-pixel upscaling: (B, C, H, W) -> (B, C' / 4, 2H, 2W)."""

    def __init__(self, in_channels: int, compression_factor: float) -> None:
        super().__init__()
        compressed = _compressed(in_channels, compression_factor)
        # DeepPoseKit takes the nearest multiple of 4, the lower one on a tie (numpy's argmin).
        lower = compressed // 4 * 4
        self.compress = SeluConv(in_channels, max(4, lower if compressed - lower <= 2 else lower + 4), 1)
        self.out_channels = self.compress.out_channels // 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The 1x1 compression, then channels to space."""
        return F.pixel_shuffle(self.compress(x), 2)  # (B, C' / 4, 2H, 2W)


class FrontEnd(nn.Module):
    """DeepPoseKit's FrontEnd at downsample_factor 2: images (B, C, H, W) -> features (B, F, H / 4, W / 4)."""

    def __init__(self, in_channels: int, growth_rate: int, bottleneck_factor: float, compression_factor: float):
        super().__init__()
        self.conv_7x7 = SeluConv(in_channels, growth_rate, 7, stride=2)  # (B, g, H / 2, W / 2)
        channels = 4 * in_channels + growth_rate  # with the input space-to-depth: (B, 4C + g, H / 2, W / 2)
        self.dense_half = DenseConv(channels, _block_growth(growth_rate, 1), bottleneck_factor)
        channels = self.dense_half.out_channels
        self.shortcut = TransitionDown(channels, compression_factor, pool=2)  # (B, ., H / 4, W / 4)
        self.transition = TransitionDown(channels, compression_factor, pool=2)
        self.dense_quarter = DenseConv(self.transition.out_channels, _block_growth(growth_rate, 2), bottleneck_factor)
        self.compress_shortcut = SeluConv(
            self.shortcut.out_channels, _compressed(self.shortcut.out_channels, compression_factor), 1
        )
        self.compress_quarter = SeluConv(
            self.dense_quarter.out_channels, _compressed(self.dense_quarter.out_channels, compression_factor), 1
        )
        self.out_channels = self.compress_shortcut.out_channels + self.compress_quarter.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The features at 1/4 that the first output and every stack read."""
        half = torch.cat([F.pixel_unshuffle(x, 2), self.conv_7x7(x)], dim=1)  # (B, 4C + g, H / 2, W / 2)
        half = self.dense_half(half)
        quarter = self.dense_quarter(self.transition(half))  # (B, ., H / 4, W / 4)
        return torch.cat([self.compress_shortcut(self.shortcut(half)), self.compress_quarter(quarter)], dim=1)


class FCDenseNet(nn.Module):
    """One stack (DeepPoseKit's DenseNet): (B, C, h, w) -> (B, out_channels, h, w), h, w multiples of 2 ** n_down."""

    def __init__(
        self,
        in_channels: int,
        n_down: int,
        growth_rate: int,
        bottleneck_factor: float,
        compression_factor: float,
    ) -> None:
        super().__init__()
        skips = [in_channels]  # channels of the features joined back at each scale, finest first
        self.transition_in = TransitionDown(in_channels, compression_factor)
        channels = self.transition_in.out_channels
        self.down = nn.ModuleList()
        self.transitions_down = nn.ModuleList()
        for depth in range(1 + DOWNSAMPLE_FACTOR, n_down + DOWNSAMPLE_FACTOR):
            self.down.append(DenseConv(channels, _block_growth(growth_rate, depth), bottleneck_factor))
            skips.append(self.down[-1].out_channels)
            self.transitions_down.append(TransitionDown(skips[-1], compression_factor))
            channels = self.transitions_down[-1].out_channels
        skips.append(channels)
        self.encoded = DenseConv(channels, _block_growth(growth_rate, DOWNSAMPLE_FACTOR), bottleneck_factor)
        channels = self.encoded.out_channels
        # The skips are compressed coarsest first; the decoder joins them in that order.
        self.compress_skips = nn.ModuleList(
            SeluConv(skip, _compressed(skip, compression_factor), 1) for skip in reversed(skips)
        )
        self.up = nn.ModuleList()
        self.transitions_up = nn.ModuleList()
        for level, depth in enumerate(reversed(range(DOWNSAMPLE_FACTOR, n_down + DOWNSAMPLE_FACTOR))):
            channels += self.compress_skips[level].out_channels
            self.up.append(DenseConv(channels, _block_growth(growth_rate, depth), bottleneck_factor))
            self.transitions_up.append(TransitionUp(self.up[-1].out_channels, compression_factor))
            channels = self.transitions_up[-1].out_channels
        self.output = DenseConv(
            channels + self.compress_skips[-1].out_channels,
            _block_growth(growth_rate, DOWNSAMPLE_FACTOR),
            bottleneck_factor,
        )
        self.out_channels = self.output.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode `n_down` scales down and decode back, joining each scale's compressed encoder features."""
        skips = [x]
        x = self.transition_in(x)  # (B, ., h / 2, w / 2)
        for dense, transition in zip(self.down, self.transitions_down, strict=True):
            x = dense(x)
            skips.append(x)
            x = transition(x)  # half the size
        skips.append(x)
        x = self.encoded(x)  # (B, ., h / 2 ** n_down, w / 2 ** n_down)
        skips = [compress(skip) for compress, skip in zip(self.compress_skips, reversed(skips), strict=True)]
        for dense, transition, skip in zip(self.up, self.transitions_up, skips, strict=False):
            x = transition(dense(torch.cat([x, skip], dim=1)))  # twice the size
        return self.output(torch.cat([x, skips[-1]], dim=1))  # (B, out_channels, h, w)


class StackedDenseNet(nn.Module):
    """DeepPoseKit's Stacked DenseNet: images to K confidence maps from the front end and from every stack.

    Args:
        n_keypoints: K, the number of maps each output has (posecore's registry adds the
            posture-graph maps here, as DeepPoseKit's n_output_channels does).
        in_channels: C, image channels (3 for RGB, 1 for grey).
        n_stacks: encoder-decoders in sequence, each supervised (DeepPoseKit's default: 1; its
            paper and examples: 2).
        n_transitions: times each encoder-decoder halves the 1/4-resolution features;
            DeepPoseKit's n_transitions minus 2. H and W must be multiples of
            `input_multiple = 4 * 2 ** n_transitions`.
        growth_rate: feature maps added by the first dense convolutions; deeper ones add
            2 or 3 times as many (DeepPoseKit's default: 48; paper and examples: 32).
        bottleneck_factor: width of each 1x1 bottleneck, in multiples of the growth.
        compression_factor: fraction of channels kept by each compression (0 < f <= 1).

    Attributes:
        output_stride: 4; map cell j covers image pixels [4j, 4j + 4) (see posecore.geometry).
        input_multiple: H and W of the input must be multiples of it (the predictor pads).
    """

    output_stride = 2**DOWNSAMPLE_FACTOR

    # The values each hyperparameter may take, checked when the config is read (before any job),
    # without importing torch: posecore.models.registry reads this literal from the source.
    HYPERPARAMETER_RANGES: ClassVar[dict[str, tuple]] = {
        "n_stacks": ((">=", 1),),
        "n_transitions": ((">=", 1),),
        "growth_rate": ((">=", 1),),
        "bottleneck_factor": ((">", 0),),
        "compression_factor": ((">", 0), ("<=", 1)),
    }

    def __init__(
        self,
        n_keypoints: int,
        in_channels: int = 3,
        n_stacks: int = 1,
        n_transitions: int = 3,
        growth_rate: int = 48,
        bottleneck_factor: float = 1.0,
        compression_factor: float = 0.5,
    ) -> None:
        super().__init__()
        if n_keypoints < 1 or in_channels < 1 or n_stacks < 1 or growth_rate < 1 or n_transitions < 1:
            raise ValueError("n_keypoints, in_channels, n_stacks, n_transitions and growth_rate must all be >= 1")
        if not 0.0 < compression_factor <= 1.0:
            raise ValueError(f"compression_factor must be in (0, 1], got {compression_factor}")
        if bottleneck_factor <= 0:
            raise ValueError(f"bottleneck_factor must be > 0, got {bottleneck_factor}")
        self.n_keypoints = n_keypoints
        self.in_channels = in_channels
        self.input_multiple = self.output_stride * 2**n_transitions
        self.front = FrontEnd(in_channels, growth_rate, bottleneck_factor, compression_factor)
        front = self.front.out_channels
        self.front_head = glorot_uniform_(nn.Conv2d(front, n_keypoints, 1))  # output_0
        self.front_norm = batch_norm(n_keypoints)
        self.stacks = nn.ModuleList()
        self.norms = nn.ModuleList()  # BatchNorm of each stack's previous maps, joined to its own head
        self.heads = nn.ModuleList()
        channels = front + n_keypoints
        for _ in range(n_stacks):
            stack = FCDenseNet(channels, n_transitions, growth_rate, bottleneck_factor, compression_factor)
            self.stacks.append(stack)
            self.norms.append(batch_norm(n_keypoints))
            channels = stack.out_channels + front + 2 * n_keypoints
            self.heads.append(glorot_uniform_(nn.Conv2d(channels, n_keypoints, 1)))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Confidence maps of the front end and of every stack.

        Args:
            x: normalised float images (B, C, H, W), H and W multiples of `input_multiple`.

        Returns:
            `n_stacks + 1` tensors (B, K, H / 4, W / 4), the front end's first; the last is the
            final output.
        """
        check_input(x, self.in_channels, self.input_multiple)
        front = self.front(x)  # (B, F, H / 4, W / 4)
        maps = self.front_head(front)  # (B, K, H / 4, W / 4)
        front = torch.cat([front, self.front_norm(maps)], dim=1)  # DeepPoseKit appends these to the front's list
        outputs = [maps]
        features = front
        for stack, norm, head in zip(self.stacks, self.norms, self.heads, strict=True):
            features = torch.cat([stack(features), front, norm(maps)], dim=1)
            maps = head(features)
            outputs.append(maps)
        return outputs
