"""The defaults of Keras layers that DeepPoseKit's and LEAP's networks rely on, for their PyTorch versions."""

from __future__ import annotations

import math

from torch import nn

BN_EPS, BN_MOMENTUM = 1e-3, 0.01  # Keras BatchNormalization's epsilon, and 1 - its momentum of 0.99


def batch_norm(channels: int) -> nn.BatchNorm2d:
    """BatchNorm2d with Keras' epsilon and running-average momentum."""
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


def lecun_normal_(conv: nn.Conv2d) -> nn.Conv2d:
    """Keras' lecun_normal (a normal truncated at 2 sigma, standard deviation sqrt(1 / fan_in)); bias 0."""
    fan_in = conv.in_channels // conv.groups * math.prod(conv.kernel_size)
    std = math.sqrt(1.0 / fan_in) / 0.87962566103423978  # the standard deviation of the truncated unit normal
    nn.init.trunc_normal_(conv.weight, std=std, a=-2 * std, b=2 * std)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv


def glorot_uniform_(conv: nn.Conv2d | nn.ConvTranspose2d) -> nn.Conv2d | nn.ConvTranspose2d:
    """Keras' default kernel initialiser (glorot_uniform); bias 0."""
    nn.init.xavier_uniform_(conv.weight)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv
