"""ResNet + deconvolution (DeepLabCut, Mathis et al. 2018), in plain torch.

The backbone is a ResNet (He et al. 2016) of depth 18, 34, 50, 101 or 152, built with the
module names of torchvision's `resnet{depth}` (`conv1`, `bn1`, `layer1.0.conv1`, ...,
`layer4.2.downsample.1`), so that ImageNet weights saved by torchvision load onto it by name
(`weights_path`, read from a local file, never fetched). As in DeepLabCut, the last stage can
keep stride 16 with dilated convolutions (`dilate_last`). `n_deconv` stride-2 transposed
convolutions (BN, ReLU) then bring the features up, and a 1x1 convolution gives K maps:
output stride = (16 if dilate_last else 32) / 2 ** n_deconv. One supervised output.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from posecore.errors import InputError
from posecore.models.inputs import check_input

_LAYERS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


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
    """DeepLabCut's network: a ResNet backbone and deconvolutions to K confidence maps.

    Args:
        n_keypoints: K, the number of confidence maps.
        in_channels: C, image channels.
        depth: ResNet depth, one of 18, 34, 50, 101, 152 (DeepLabCut: 50).
        dilate_last: keep the last stage at stride 16 with dilated convolutions (DeepLabCut).
        n_deconv: stride-2 transposed convolutions after the backbone.
        deconv_channels: channels of each transposed convolution's output.
        weights_path: a local torchvision-layout ResNet state_dict (.pth), e.g. ImageNet weights,
            loaded onto the backbone by name ("" for random initialisation). Its `fc.*` keys are
            ignored; for C != 3 the first convolution's RGB filters are averaged over channels.

    Attributes:
        output_stride: (16 if dilate_last else 32) / 2 ** n_deconv image pixels per map cell.
        input_multiple: H and W of the input must be multiples of the backbone's stride.

    Raises:
        InputError: the weights file is missing, unreadable, or does not fit this depth.
    """

    def __init__(
        self,
        n_keypoints: int,
        in_channels: int = 3,
        depth: int = 50,
        dilate_last: bool = True,
        n_deconv: int = 2,
        deconv_channels: int = 256,
        weights_path: str = "",
    ) -> None:
        super().__init__()
        if depth not in _LAYERS:
            raise ValueError(f"depth must be one of {', '.join(map(str, _LAYERS))}, got {depth}")
        if n_keypoints < 1 or in_channels < 1 or deconv_channels < 1:
            raise ValueError("n_keypoints, in_channels and deconv_channels must be >= 1")
        self.backbone = ResNetBackbone(depth, in_channels, dilate_last)
        if not 0 <= n_deconv <= (4 if dilate_last else 5):
            raise ValueError(f"n_deconv must be between 0 and {4 if dilate_last else 5}, got {n_deconv}")
        self.n_keypoints = n_keypoints
        self.in_channels = in_channels
        self.input_multiple = self.backbone.stride
        self.output_stride = self.backbone.stride // 2**n_deconv
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
        self.head = nn.Conv2d(channels, n_keypoints, 1)
        if weights_path:
            self.load_backbone_weights(weights_path)

    def load_backbone_weights(self, path: str | Path) -> None:
        """Copy a torchvision-layout ResNet state_dict from a local file onto the backbone, by name.

        Raises:
            InputError: the file is missing or unreadable, or a backbone weight is absent from it
                or has another shape (a ResNet of another depth), naming the key.
        """
        path = Path(path)
        if not path.is_file():
            raise InputError(path, "ResNet weights file not found (model.hyperparameters.weights_path)")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise InputError(path, f"not a torch state_dict ({type(error).__name__}: {error})") from error
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise InputError(path, "not a state_dict (a mapping of weight names to tensors)")
        state = {key.removeprefix("module."): value for key, value in state.items()}
        own = self.backbone.state_dict()
        for key, target in own.items():
            if key not in state:
                if key.endswith("num_batches_tracked"):
                    continue
                raise InputError(path, "weight missing: not a torchvision ResNet of this depth", where=f"key {key}")
            value = state[key]
            if key == "conv1.weight" and value.ndim == 4 and value.shape[1] != target.shape[1]:
                value = value.mean(dim=1, keepdim=True).expand(-1, target.shape[1], -1, -1) * (3 / target.shape[1])
            if tuple(value.shape) != tuple(target.shape):
                raise InputError(
                    path,
                    f"shape {tuple(value.shape)} where the depth-{self._depth()} ResNet has {tuple(target.shape)}",
                    where=f"key {key}",
                )
            own[key] = value.to(target.dtype)
        self.backbone.load_state_dict(own, strict=True)

    def _depth(self) -> int:
        counts = tuple(len(getattr(self.backbone, f"layer{i}")) for i in range(1, 5))
        bottleneck = isinstance(self.backbone.layer1[0], Bottleneck)
        return next(d for d, layers in _LAYERS.items() if layers == counts and (d >= 50) == bottleneck)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Confidence maps.

        Args:
            x: normalised float images (B, C, H, W), H and W multiples of `input_multiple`.

        Returns:
            A one-element list: (B, K, H / output_stride, W / output_stride).
        """
        check_input(x, self.in_channels, self.input_multiple)
        return [self.head(self.deconv(self.backbone(x)))]  # [(B, K, H / s, W / s)]
