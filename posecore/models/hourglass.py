"""DeepPoseKit's Stacked Hourglass (Newell et al. 2016, as Graving et al. 2019 built it), in PyTorch.

This is the network of DeepPoseKit 0.3.9's `StackedHourglass` with its TrainingGenerator at
`downsample_factor=2` (maps at 1/4 of the image), layer for layer:

- a residual block is a BatchNorm before each of three convolutions (1x1 to
  `filters / bottleneck_factor`, 3x3, 1x1 back to `filters`), each convolution without bias
  and followed by ReLU, then a BatchNorm, added to the BatchNorm of its input;
- the front end is a 7x7 stride-2 convolution to `filters` channels (ReLU), a residual block, a
  2x2 max-pool and two residual blocks;
- each hourglass goes down `n_transitions` times (a residual block, kept as the skip of its
  scale, then a 2x2 max-pool), runs a residual block and, beside it, three more on its output
  (their BatchNorms added), and comes back up: nearest-neighbour upsampling (BatchNorm) added
  to the skip passed through a residual block (BatchNorm), then a residual block;
- after each hourglass an output module: BatchNorm, 1x1 convolution (ReLU), then the maps (a
  BatchNorm and a linear 1x1 convolution with bias); the next stack's input is the sum of the
  BatchNorms of the maps remapped (BatchNorm, 1x1 convolution, ReLU), of the features
  remapped the same way, and of the hourglass's output (the last stack has none).

One supervised output per stack.

`n_transitions` counts the halvings of each hourglass below the maps (DeepPoseKit's value minus
2); BatchNorms take Keras' epsilon and momentum. How this follows DeepPoseKit, and the details
that differ: docs/models.md. `posecore.models.hourglass_lite` is posecore's earlier, lighter
hourglass.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from posecore.models.inputs import check_input
from posecore.models.keras_init import batch_norm, glorot_uniform_

OUTPUT_STRIDE = 4  # DeepPoseKit's downsample_factor 2


def _conv_relu(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Sequential:
    """'Same' convolution without bias, then ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, bias=False),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    """DeepPoseKit's ResidualBlock: (B, C_in, H, W) -> (B, filters, H, W)."""

    def __init__(self, in_channels: int, filters: int, bottleneck_factor: int) -> None:
        super().__init__()
        middle = filters // bottleneck_factor
        self.identity = nn.Sequential(batch_norm(in_channels))
        if in_channels != filters:
            self.identity.append(_conv_relu(in_channels, filters, 1))
        self.body = nn.Sequential(
            batch_norm(in_channels),
            _conv_relu(in_channels, middle, 1),
            batch_norm(middle),
            _conv_relu(middle, middle, 3),
            batch_norm(middle),
            _conv_relu(middle, filters, 1),
            batch_norm(filters),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised input (projected where the widths differ) plus the normalised bottleneck."""
        return self.identity(x) + self.body(x)


class Hourglass(nn.Module):
    """DeepPoseKit's Hourglass: (B, F, h, w) -> (B, F, h, w), h and w multiples of 2 ** n_down."""

    def __init__(self, filters: int, bottleneck_factor: int, n_down: int) -> None:
        super().__init__()

        def block() -> ResidualBlock:
            return ResidualBlock(filters, filters, bottleneck_factor)

        self.down = nn.ModuleList(block() for _ in range(n_down))
        self.bottom = block()
        self.bottom_deep = nn.Sequential(block(), block(), block())
        self.bottom_norm = batch_norm(filters)
        self.bottom_deep_norm = batch_norm(filters)
        self.skips = nn.ModuleList(block() for _ in range(n_down))  # coarsest first, as the decoder runs
        self.skip_norms = nn.ModuleList(batch_norm(filters) for _ in range(n_down))
        self.up_norms = nn.ModuleList(batch_norm(filters) for _ in range(n_down))
        self.up = nn.ModuleList(block() for _ in range(n_down))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Down with a skip kept at each scale, the bottom, and back up adding the skips."""
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)  # half the size
        x = self.bottom(x)
        x = self.bottom_norm(x) + self.bottom_deep_norm(self.bottom_deep(x))
        for skip_block, skip_norm, up_norm, up_block, skip in zip(
            self.skips, self.skip_norms, self.up_norms, self.up, reversed(skips), strict=True
        ):
            x = up_norm(F.interpolate(x, scale_factor=2.0, mode="nearest"))  # twice the size
            x = up_block(skip_norm(skip_block(skip)) + x)
        return x


class Output(nn.Module):
    """DeepPoseKit's Output module: features (B, F, h, w) -> maps (B, K, h, w) and the next stack's input (B, F, h, w).

    The last stack's module has no next input (Keras leaves those layers out of the model).
    """

    def __init__(self, n_keypoints: int, filters: int, last: bool) -> None:
        super().__init__()
        self.features = nn.Sequential(batch_norm(filters), _conv_relu(filters, filters, 1))
        self.maps = nn.Sequential(batch_norm(filters), glorot_uniform_(nn.Conv2d(filters, n_keypoints, 1)))
        self.last = last
        if not last:
            self.remap_maps = nn.Sequential(
                batch_norm(n_keypoints), _conv_relu(n_keypoints, filters, 1), batch_norm(filters)
            )
            self.remap_features = nn.Sequential(
                batch_norm(filters), _conv_relu(filters, filters, 1), batch_norm(filters)
            )
            self.identity = batch_norm(filters)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The stack's maps, and the sum the next stack reads (None after the last stack)."""
        features = self.features(x)
        maps = self.maps(features)
        if self.last:
            return maps, None
        return maps, self.remap_maps(maps) + self.remap_features(features) + self.identity(x)


class StackedHourglass(nn.Module):
    """DeepPoseKit's Stacked Hourglass: images to one set of K confidence maps per stack.

    Args:
        n_keypoints: K, the number of maps each stack outputs.
        in_channels: C, image channels (3 for RGB, 1 for grey).
        n_stacks: hourglasses in sequence, each supervised (DeepPoseKit's default: 1).
        n_transitions: times each hourglass halves the 1/4-resolution features; DeepPoseKit's
            n_transitions minus 2. H and W must be multiples of
            `input_multiple = 4 * 2 ** n_transitions`.
        filters: channels of every feature map (DeepPoseKit and Newell et al.: 256).
        bottleneck_factor: the 3x3 convolutions of residual blocks have
            `filters // bottleneck_factor` channels (DeepPoseKit: 2).

    Attributes:
        output_stride: 4; map cell j covers image pixels [4j, 4j + 4) (see posecore.geometry).
        input_multiple: H and W of the input must be multiples of it (the predictor pads).
    """

    output_stride = OUTPUT_STRIDE

    # The values each hyperparameter may take, checked when the config is read (before any job),
    # without importing torch: posecore.models.registry reads this literal from the source.
    HYPERPARAMETER_RANGES: ClassVar[dict[str, tuple]] = {
        "n_stacks": ((">=", 1),),
        "n_transitions": ((">=", 1),),
        "filters": ((">=", 1),),
        "bottleneck_factor": ((">=", 1),),
    }

    def __init__(
        self,
        n_keypoints: int,
        in_channels: int = 3,
        n_stacks: int = 1,
        n_transitions: int = 3,
        filters: int = 256,
        bottleneck_factor: int = 2,
    ) -> None:
        super().__init__()
        if n_keypoints < 1 or in_channels < 1 or n_stacks < 1 or n_transitions < 1:
            raise ValueError("n_keypoints, in_channels, n_stacks and n_transitions must be >= 1")
        if bottleneck_factor < 1 or filters < bottleneck_factor:
            raise ValueError(f"need 1 <= bottleneck_factor <= filters, got {bottleneck_factor} and {filters}")
        self.n_keypoints = n_keypoints
        self.in_channels = in_channels
        self.input_multiple = self.output_stride * 2**n_transitions
        self.front = nn.Sequential(
            _conv_relu(in_channels, filters, 7, stride=2),  # (B, F, H / 2, W / 2)
            ResidualBlock(filters, filters, bottleneck_factor),
            nn.MaxPool2d(2),  # (B, F, H / 4, W / 4)
            ResidualBlock(filters, filters, bottleneck_factor),
            ResidualBlock(filters, filters, bottleneck_factor),
        )
        self.hourglasses = nn.ModuleList(Hourglass(filters, bottleneck_factor, n_transitions) for _ in range(n_stacks))
        self.outputs = nn.ModuleList(Output(n_keypoints, filters, last=i == n_stacks - 1) for i in range(n_stacks))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Confidence maps of every stack.

        Args:
            x: normalised float images (B, C, H, W), H and W multiples of `input_multiple`.

        Returns:
            One (B, K, H / 4, W / 4) tensor per stack, in order; the last is the final output.
        """
        check_input(x, self.in_channels, self.input_multiple)
        x = self.front(x)  # (B, F, H / 4, W / 4)
        outputs = []
        for hourglass, output in zip(self.hourglasses, self.outputs, strict=True):
            maps, x = output(hourglass(x))  # (B, K, H / 4, W / 4), (B, F, H / 4, W / 4)
            outputs.append(maps)
        return outputs
