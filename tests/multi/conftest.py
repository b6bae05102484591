"""Stand-in models for the multi-animal tests: their maps are the frame's own channels."""

from __future__ import annotations

import torch
from torch import nn

from posecore.models.export import LoadedModel, ModelMeta


class ChannelMaps(nn.Module):
    """A stand-in model whose maps are its first channels: a frame's bright blobs are its peaks (stride 1)."""

    output_stride = 1
    input_multiple = 1

    def __init__(self, n_keypoints: int) -> None:
        super().__init__()
        self.n_keypoints = n_keypoints

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [x[:, : self.n_keypoints]]


def channel_model(names: tuple[str, ...]) -> LoadedModel:
    """A `ChannelMaps` with metadata that maps uint8 0..255 to 0..1 (mean 0, std 255)."""
    meta = ModelMeta("stand-in", {}, names, (64, 64), 3, (0.0,) * 3, (255.0,) * 3, 1)
    return LoadedModel(ChannelMaps(len(names)).eval(), meta, sha256="")
