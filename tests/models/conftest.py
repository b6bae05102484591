"""Fixtures of the model tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
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


@dataclass(frozen=True)
class Format1Files:
    """The format-1 model files that posecore saved before its faithful networks, and what they output."""

    folder: Path
    expected: dict  # "input", "outputs" per architecture; "spec" and "meta" of resnet_deconv

    def resnet_deconv(self, path: Path, hyperparameters: dict | None = None) -> Path:
        """Write the resnet_deconv file (too large to keep) from its recorded names, shapes and seed."""
        meta = dict(self.expected["meta"])
        if hyperparameters is not None:
            meta["hyperparameters"] = hyperparameters
        state = seeded_state_dict([tuple(row) for row in self.expected["spec"]["resnet_deconv"]], 3)
        torch.save({"format": "posecore-model", **meta, "state_dict": state}, path)
        return path


@pytest.fixture(scope="session")
def format_1() -> Format1Files:
    """tests/models/data/format-v1: the files, the input and the outputs recorded when they were saved."""
    return Format1Files(FORMAT_V1, torch.load(FORMAT_V1 / "expected.pt", weights_only=True))
