"""Fixtures of the model tests."""

from __future__ import annotations

from pathlib import Path

import torch

FORMAT_V1 = Path(__file__).parent / "data" / "format-v1"


def seeded_state_dict(spec: list[tuple[str, list[int], str]], seed: int) -> dict[str, torch.Tensor]:
    """Weights of the shapes in `spec` ((key, shape, dtype) rows), the same for the same seed.

    Floats are normal with standard deviation 0.05 (BatchNorm running variances: uniform in
    [0.5, 1.5), weights 1 + that normal); integers (num_batches_tracked) are 0.
    """
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape, dtype in spec:
        if not dtype.startswith("torch.float"):
            state[key] = torch.zeros(shape, dtype=getattr(torch, dtype.removeprefix("torch.")))
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(shape, generator=generator)
        else:
            value = 0.05 * torch.randn(shape, generator=generator)
            state[key] = value + 1 if key.endswith(".weight") and len(shape) == 1 else value
    return state
