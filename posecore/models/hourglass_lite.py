"""posecore's lighter Stacked Hourglass (after Newell et al. 2016), with pre-activation residuals.

Up to exported-model format 1 this was posecore's `stacked_hourglass`; that name is now
DeepPoseKit's own Stacked Hourglass (`posecore.models.hourglass`), and this network is
`hourglass_lite`, kept so that models trained with it load and train as before.

The network has three parts:

- a front end that takes the image to 1/4 of its size: a 7x7 convolution with stride 2, a
  residual module, a 2x2 max-pool, then two residual modules to `n_features` channels;
- `n_stacks` hourglasses, each a symmetric encoder-decoder that halves the resolution
  `n_transitions` times with max-pooling and doubles it back with nearest-neighbour
  upsampling, adding at every scale a skip branch of residual modules (all features keep
  `n_features` channels);
- one output head per stack (a 1x1 convolution to K confidence maps): every stack is
  supervised. The next stack reads its input plus 1x1 projections of the stack's features
  and of its maps (the "remapping" of Newell et al.).

Residual modules are pre-activation bottlenecks: BN-ReLU-1x1 (C/2), BN-ReLU-3x3 (C/2),
BN-ReLU-1x1 (C), added to the input (through a 1x1 convolution when the widths differ).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from posecore.models.inputs import check_input


def _bn_relu_conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> nn.Sequential:
    """Pre-activation convolution: BatchNorm, ReLU, then a 'same' convolution without bias."""
    return nn.Sequential(
        nn.BatchNorm2d(in_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False),
    )


class Residual(nn.Module):
    """Bottleneck residual module: (B, C_in, H, W) -> (B, C_out, H, W)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        middle = max(1, out_channels // 2)
        self.body = nn.Sequential(
            _bn_relu_conv(in_channels, middle, 1),
            _bn_relu_conv(middle, middle, 3),
            _bn_relu_conv(middle, out_channels, 1),
        )
        self.skip = nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual sum of the bottleneck and the (projected) input."""
        return self.body(x) + self.skip(x)


class Hourglass(nn.Module):
    """One hourglass of `depth` levels: (B, C, h, w) -> (B, C, h, w), h and w multiples of 2 ** depth."""

    def __init__(self, depth: int, channels: int, n_residuals: int) -> None:
        super().__init__()

        def residuals() -> nn.Sequential:
            return nn.Sequential(*(Residual(channels, channels) for _ in range(n_residuals)))

        self.skip = residuals()
        self.down = residuals()
        self.inner = Hourglass(depth - 1, channels, n_residuals) if depth > 1 else residuals()
        self.up = residuals()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Skip branch at this scale plus the half-resolution branch upsampled back."""
        low = self.down(F.max_pool2d(x, 2))  # (B, C, h / 2, w / 2)
        low = self.up(self.inner(low))
        return self.skip(x) + F.interpolate(low, scale_factor=2.0, mode="nearest")  # (B, C, h, w)


class StackedHourglassLite(nn.Module):
    """posecore's lighter Stacked Hourglass: images to one set of K confidence maps per stack.

    Args:
        n_keypoints: K, the number of confidence maps each stack outputs.
        in_channels: C, image channels (3 for RGB, 1 for grey).
        n_stacks: hourglasses in sequence, each supervised.
        n_features: channels of every feature map inside the hourglasses (Newell et al. use 256).
        n_transitions: times each hourglass halves the 1/4-resolution features; H and W must be
            multiples of `input_multiple = 4 * 2 ** n_transitions`.
        n_residuals: residual modules per branch at each scale.

    Attributes:
        output_stride: 4; map cell j covers image pixels [4j, 4j + 4) (see posecore.geometry).
        input_multiple: H and W of the input must be multiples of it (the predictor pads).
    """

    output_stride = 4

    # The values each hyperparameter may take, checked when the config is read (before any job),
    # without importing torch: posecore.models.registry reads this literal from the source.
    HYPERPARAMETER_RANGES: ClassVar[dict[str, tuple]] = {
        "n_stacks": ((">=", 1),),
        "n_features": ((">=", 1),),
        "n_transitions": ((">=", 1),),
        "n_residuals": ((">=", 1),),
    }

    def __init__(
        self,
        n_keypoints: int,
        in_channels: int = 3,
        n_stacks: int = 2,
        n_features: int = 64,
        n_transitions: int = 3,
        n_residuals: int = 1,
    ) -> None:
        super().__init__()
        if n_keypoints < 1 or in_channels < 1 or n_stacks < 1 or n_features < 2:
            raise ValueError("n_keypoints, in_channels and n_stacks must be >= 1, n_features >= 2")
        if n_transitions < 1 or n_residuals < 1:
            raise ValueError("n_transitions and n_residuals must be >= 1")
        self.n_keypoints = n_keypoints
        self.in_channels = in_channels
        self.input_multiple = self.output_stride * 2**n_transitions
        half = max(1, n_features // 2)
        self.front = nn.Sequential(
            nn.Conv2d(in_channels, half, 7, stride=2, padding=3, bias=False),  # (B, F / 2, H / 2, W / 2)
            Residual(half, half),
            nn.MaxPool2d(2),  # (B, F / 2, H / 4, W / 4)
            Residual(half, half),
            Residual(half, n_features),  # (B, F, H / 4, W / 4)
        )
        self.hourglasses = nn.ModuleList(Hourglass(n_transitions, n_features, n_residuals) for _ in range(n_stacks))
        self.features = nn.ModuleList(
            nn.Sequential(
                Residual(n_features, n_features),
                _bn_relu_conv(n_features, n_features, 1),
                nn.BatchNorm2d(n_features),
                nn.ReLU(inplace=True),
            )
            for _ in range(n_stacks)
        )
        self.heads = nn.ModuleList(nn.Conv2d(n_features, n_keypoints, 1) for _ in range(n_stacks))
        self.remap_features = nn.ModuleList(nn.Conv2d(n_features, n_features, 1) for _ in range(n_stacks - 1))
        self.remap_maps = nn.ModuleList(nn.Conv2d(n_keypoints, n_features, 1) for _ in range(n_stacks - 1))

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
        for stack, (hourglass, features, head) in enumerate(
            zip(self.hourglasses, self.features, self.heads, strict=True)
        ):
            decoded = features(hourglass(x))  # (B, F, H / 4, W / 4)
            maps = head(decoded)  # (B, K, H / 4, W / 4)
            outputs.append(maps)
            if stack < len(self.remap_features):
                x = x + self.remap_features[stack](decoded) + self.remap_maps[stack](maps)
        return outputs
