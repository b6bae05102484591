"""ResNet + deconvolution: DeepLabCut's network (Mathis et al. 2018), in plain torch.

With its defaults this is DeepLabCut's single-animal `resnet_50` (the TensorFlow pose_net of
DeepLabCut 2, `nnets/resnet.py` and `nnets/layers.py`; DeepLabCut 3's PyTorch `resnet_50` has
the same layers): a ResNet-50 whose last stage keeps stride 16 with dilated convolutions
(`dilate_last`), then one 3x3 stride-2 transposed convolution with bias straight to the K
maps, so maps at 1/8 of the image. One supervised output.

The backbone is a ResNet (He et al. 2016) of depth 18, 34, 50, 101 or 152 with the module
names of torchvision's `resnet{depth}` (`conv1`, `bn1`, `layer1.0.conv1`, ...), so that
ImageNet weights load onto it by name: `pretrained="imagenet"` fetches torchvision's published
ones once into torch's hub cache (`posecore.models.pretrained`), `weights_path` reads a local
copy. It follows torchvision's layout (stride on the 3x3 convolution of each stage's first block) and
leaves out DeepLabCut's location-refinement maps: docs/models.md says why and what it costs.

`n_deconv` inserts stride-2 4x4 transposed convolutions (BN, ReLU) of `deconv_channels`
before the output layer, as SimpleBaseline (Xiao et al. 2018) does. `output_layer="conv"`
replaces the transposed output convolution with a 1x1 convolution: with `n_deconv=2` and 256
channels, posecore's earlier head (exported-model format 1). Output stride =
(16 if dilate_last else 32) / 2 ** n_deconv, halved again by the transposed output layer.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from posecore.errors import InputError
from posecore.models.inputs import check_input
from posecore.models.keras_init import glorot_uniform_
from posecore.models.pretrained import IMAGENET_FILES, imagenet_weights, read_resnet_weights

_LAYERS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
OUTPUT_LAYERS = ("transposed", "conv")
PRETRAINED = ("", "imagenet")


class BasicBlock(nn.Module):
    """ResNet-18/34 block, two 3x3 convolutions: (B, C_in, H, W) -> (B, C, H / stride, W / stride)."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int, dilation: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(in_channels, channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual sum, then ReLU."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    """ResNet-50/101/152 block (stride on the 3x3, as torchvision): (B, C_in, H, W) -> (B, 4C, H / s, W / s)."""

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int, dilation: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, channels * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(in_channels, channels * 4, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Residual sum, then ReLU."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


def _downsample(in_channels: int, out_channels: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))


class ResNetBackbone(nn.Module):
    """torchvision's ResNet without its classifier: (B, C, H, W) -> (B, F, H / s, W / s), s 32 or 16 (dilated)."""

    def __init__(self, depth: int, in_channels: int, dilate_last: bool) -> None:
        super().__init__()
        block = BasicBlock if depth < 50 else Bottleneck
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)  # (B, 64, H / 2, W / 2)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)  # (B, 64, H / 4, W / 4)
        channels = 64
        for stage, (n_blocks, width) in enumerate(zip(_LAYERS[depth], (64, 128, 256, 512), strict=True), start=1):
            dilated = dilate_last and stage == 4
            stride = 1 if stage == 1 or dilated else 2
            blocks = []
            for i in range(n_blocks):
                dilation = 2 if dilated and i > 0 else 1  # torchvision: the first block keeps the previous dilation
                blocks.append(block(channels, width, stride if i == 0 else 1, dilation))
                channels = width * block.expansion
            setattr(self, f"layer{stage}", nn.Sequential(*blocks))
        self.out_channels = channels
        self.stride = 16 if dilate_last else 32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features at 1/stride of the input."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class ResNetDeconv(nn.Module):
    """DeepLabCut's network: a ResNet backbone and a transposed convolution to K confidence maps.

    Args:
        n_keypoints: K, the number of confidence maps.
        in_channels: C, image channels.
        depth: ResNet depth, one of 18, 34, 50, 101, 152 (DeepLabCut: 50).
        dilate_last: keep the last stage at stride 16 with dilated convolutions (DeepLabCut).
        n_deconv: stride-2 transposed convolutions (BN, ReLU) before the output layer
            (DeepLabCut: 0).
        deconv_channels: channels of each of those.
        output_layer: "transposed" (DeepLabCut's 3x3 stride-2 transposed convolution to the
            maps) or "conv" (a 1x1 convolution, no upsampling).
        pretrained: "imagenet" to start the backbone from torchvision's ImageNet weights of this
            depth (downloaded once into torch's hub cache, or read from `weights_path`), ""
            for random initialisation (or `weights_path` alone).
        weights_path: a local torchvision-layout ResNet state_dict (.pth) loaded onto the
            backbone by name ("" for none). Its `fc.*` keys are ignored; for C != 3 the first
            convolution's RGB filters are averaged over channels.

    Attributes:
        output_stride: image pixels per map cell (DeepLabCut: 8).
        input_multiple: H and W of the input must be multiples of the backbone's stride.

    Raises:
        InputError: the weights cannot be had (no file, no network: the message says how), or
            are not those of a torchvision ResNet of this depth (naming the file and what it holds).
    """

    # The values each hyperparameter may take, checked when the config is read (before any job),
    # without importing torch: posecore.models.registry reads this literal from the source.
    HYPERPARAMETER_RANGES: ClassVar[dict[str, tuple]] = {
        "depth": (("in", (18, 34, 50, 101, 152)),),
        "n_deconv": ((">=", 0),),
        "deconv_channels": ((">=", 1),),
    }

    def __init__(
        self,
        n_keypoints: int,
        in_channels: int = 3,
        depth: int = 50,
        dilate_last: bool = True,
        n_deconv: int = 0,
        deconv_channels: int = 256,
        output_layer: str = "transposed",
        pretrained: str = "",
        weights_path: str = "",
    ) -> None:
        super().__init__()
        if depth not in _LAYERS:
            raise ValueError(f"depth must be one of {', '.join(map(str, _LAYERS))}, got {depth}")
        if n_keypoints < 1 or in_channels < 1 or deconv_channels < 1:
            raise ValueError("n_keypoints, in_channels and deconv_channels must be >= 1")
        if output_layer not in OUTPUT_LAYERS:
            raise ValueError(f"output_layer must be one of {', '.join(OUTPUT_LAYERS)}, got {output_layer!r}")
        if pretrained not in PRETRAINED:
            raise ValueError(f"pretrained must be 'imagenet' or '' (none), got {pretrained!r}")
        self.backbone = ResNetBackbone(depth, in_channels, dilate_last)
        upsampling = n_deconv + (output_layer == "transposed")
        if n_deconv < 0 or 2**upsampling > self.backbone.stride:
            raise ValueError(
                f"n_deconv must be between 0 and {(4 if dilate_last else 5) - (output_layer == 'transposed')} "
                f"with dilate_last {dilate_last} and output_layer {output_layer!r}, got {n_deconv}"
            )
        self.n_keypoints = n_keypoints
        self.in_channels = in_channels
        self.depth = depth
        self.input_multiple = self.backbone.stride
        self.output_stride = self.backbone.stride // 2**upsampling
        layers: list[nn.Module] = []
        channels = self.backbone.out_channels
        for _ in range(n_deconv):
            layers += [
                nn.ConvTranspose2d(channels, deconv_channels, 4, stride=2, padding=1, bias=False),  # (2h, 2w)
                nn.BatchNorm2d(deconv_channels),
                nn.ReLU(inplace=True),
            ]
            channels = deconv_channels
        self.deconv = nn.Sequential(*layers)
        if output_layer == "transposed":
            # TF-slim's conv2d_transpose, SAME padding: (B, C, h, w) -> (B, K, 2h, 2w), glorot-uniform weights.
            self.head = glorot_uniform_(nn.ConvTranspose2d(channels, n_keypoints, 3, 2, padding=1, output_padding=1))
        else:
            self.head = nn.Conv2d(channels, n_keypoints, 1)
        if weights_path:
            self.load_backbone_weights(read_resnet_weights(weights_path), weights_path)
        elif pretrained == "imagenet":
            self.load_backbone_weights(imagenet_weights(depth), IMAGENET_FILES[depth])

    def load_backbone_weights(self, state: dict[str, torch.Tensor], source: str | Path) -> None:
        """Copy a torchvision-layout ResNet state_dict onto the backbone, by name.

        Args:
            state: the weights (torchvision's names; `fc.*` and extra keys are ignored).
            source: where they came from, named in errors.

        Raises:
            InputError: a backbone weight is absent from `state` or has another shape: it holds
                another architecture or depth; the message says which.
        """
        own = self.backbone.state_dict()
        for key, target in own.items():
            if key not in state:
                if key.endswith("num_batches_tracked"):
                    continue
                raise InputError(
                    source,
                    f"weight missing: {describe_resnet(state)}, this model's backbone is a ResNet-{self.depth}",
                    where=f"key {key}",
                )
            value = state[key]
            if key == "conv1.weight" and value.ndim == 4 and value.shape[1] != target.shape[1]:
                value = value.mean(dim=1, keepdim=True).expand(-1, target.shape[1], -1, -1) * (3 / target.shape[1])
            if tuple(value.shape) != tuple(target.shape):
                raise InputError(
                    source,
                    f"shape {tuple(value.shape)} where the depth-{self.depth} ResNet has {tuple(target.shape)}: "
                    f"{describe_resnet(state)}",
                    where=f"key {key}",
                )
            own[key] = value.to(target.dtype)
        self.backbone.load_state_dict(own, strict=True)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Confidence maps.

        Args:
            x: normalised float images (B, C, H, W), H and W multiples of `input_multiple`.

        Returns:
            A one-element list: (B, K, H / output_stride, W / output_stride).
        """
        check_input(x, self.in_channels, self.input_multiple)
        return [self.head(self.deconv(self.backbone(x)))]  # [(B, K, H / s, W / s)]


def describe_resnet(state: dict[str, torch.Tensor]) -> str:
    """What a state_dict holds, for errors: 'it holds a torchvision ResNet-18', or what it is not."""
    if "conv1.weight" not in state or "layer1.0.conv1.weight" not in state:
        first = ", ".join(list(state)[:3]) or "none"
        return f"it is not a torchvision ResNet (no conv1.weight, layer1.0.conv1.weight; its first keys: {first})"
    counts = tuple(len({key.split(".")[1] for key in state if key.startswith(f"layer{i}.")}) for i in range(1, 5))
    bottleneck = "layer1.0.conv3.weight" in state
    depth = next((d for d, layers in _LAYERS.items() if layers == counts and (d >= 50) == bottleneck), None)
    if depth is None:
        return f"it holds a ResNet of {counts} {'bottleneck' if bottleneck else 'basic'} blocks per stage"
    return f"it holds a torchvision ResNet-{depth}"
