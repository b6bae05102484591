"""Fixtures for the peak-finding tests: Gaussian maps with known centres, and the Triton kernel.

Without a CUDA device, TRITON_INTERPRET=1 is set here, before triton is imported (Triton fixes
its own helpers to interpreted or compiled at import), so the kernel runs on CPU tensors through
Triton's interpreter; importing torch first is fine, it does not import triton. With a CUDA
device the kernel tests run compiled on the GPU instead, since compiling is impossible in a
process that imported triton in interpreter mode (other GPU tests would break); run
`TRITON_INTERPRET=1 pytest tests/ops` there to check the interpreter too.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re

import pytest
import torch

if "TRITON_INTERPRET" not in os.environ and not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"
KERNEL_DEVICE = "cpu" if os.environ.get("TRITON_INTERPRET") == "1" else "cuda" if torch.cuda.is_available() else None


def interpreter_runs_the_kernel() -> bool:
    """Whether this Triton's interpreter can run the kernel: Triton 3.7 and later.

    Before 3.7 the interpreter holds a scalar argument as a one-element array and the chunk
    loop's `range(0, size, BLOCK)` calls int() on it, which NumPy 2 refuses ("only 0-dimensional
    arrays can be converted to Python scalars"). Seen with Triton 3.6.0, the version PyTorch
    2.11's CUDA build pins; the compiled kernel is not affected.
    """
    try:
        version = importlib.metadata.version("triton")
    except importlib.metadata.PackageNotFoundError:
        return False
    major, minor = (int(part) for part in re.match(r"(\d+)\.(\d+)", version).groups())
    return (major, minor) >= (3, 7)


OLD_INTERPRETER = "Triton < 3.7's interpreter cannot run the kernel's loop under NumPy 2; test the kernel on a GPU"


def gaussian_maps(centres: torch.Tensor, height: int, width: int, sigma: float, amplitude: float = 1.0) -> torch.Tensor:
    """Maps with one Gaussian each, sampled at cell centres: centres (N, 2) as (x, y) → (N, 1, H, W) float32.

    Computed in float64 and then rounded, as a model's target maps would be.
    """
    ys = torch.arange(height, dtype=torch.float64).view(1, height, 1)
    xs = torch.arange(width, dtype=torch.float64).view(1, 1, width)
    cx = centres[:, 0].double().view(-1, 1, 1)
    cy = centres[:, 1].double().view(-1, 1, 1)
    maps = amplitude * torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2))  # (N, H, W)
    return maps.unsqueeze(1).float()


@pytest.fixture
def make_gaussians():
    """The `gaussian_maps` generator."""
    return gaussian_maps


@pytest.fixture
def random_centres():
    """(N, 2) subpixel centres (x, y) at least `margin` cells inside an H x W map, seeded."""

    def make(n: int, height: int, width: int, margin: float = 4.0, seed: int = 0) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        x = margin + torch.rand(n, generator=g, dtype=torch.float64) * (width - 1 - 2 * margin)
        y = margin + torch.rand(n, generator=g, dtype=torch.float64) * (height - 1 - 2 * margin)
        return torch.stack([x, y], dim=-1)

    return make


@pytest.fixture
def awkward_maps() -> torch.Tensor:
    """(4, 6, 7, 13) float32 maps covering each defined case, one per (b, k).

    [0, 0] random; [0, 1] all NaN; [0, 2] flat; [0, 3] maximum on the top-left corner;
    [0, 4] on the bottom-right corner; [0, 5] on the left border, mid-height;
    [1, 0] two equal maxima (the first wins); [1, 1] a NaN next to the maximum;
    [1, 2] +inf and NaN scattered, finite maximum elsewhere; [1, 3] all -inf;
    [1, 4] a single finite value among NaN; [1, 5] the maximum on the bottom border;
    [2:, :] random Gaussians with noise.
    """
    g = torch.Generator().manual_seed(1)
    maps = torch.rand(4, 6, 7, 13, generator=g) * 0.5
    maps[0, 1] = torch.nan
    maps[0, 2] = 0.25
    maps[0, 3, 0, 0] = 1.0
    maps[0, 4, 6, 12] = 1.0
    maps[0, 5, 3, 0] = 1.0
    maps[1, 0, 2, 9] = 1.0
    maps[1, 0, 5, 1] = 1.0
    maps[1, 1, 4, 6] = 1.0
    maps[1, 1, 4, 7] = torch.nan
    maps[1, 2, 0, 3] = torch.inf
    maps[1, 2, 6, 0] = torch.nan
    maps[1, 2, 3, 3] = 0.9
    maps[1, 3] = -torch.inf
    maps[1, 4] = torch.nan
    maps[1, 4, 5, 11] = 0.3
    maps[1, 5, 6, 5] = 1.0
    centres = torch.rand(12, 2, generator=g, dtype=torch.float64) * torch.tensor([12.0, 6.0], dtype=torch.float64)
    maps[2:] = (gaussian_maps(centres, 7, 13, 1.5) + 0.02 * torch.rand(12, 1, 7, 13, generator=g)).view(2, 6, 7, 13)
    return maps


@pytest.fixture
def triton_kernel():
    """`find_peaks_triton(maps, block)` on KERNEL_DEVICE (interpreter on CPU, or the GPU), result on the CPU."""
    if importlib.util.find_spec("triton") is None:
        pytest.skip("triton is not installed")
    if KERNEL_DEVICE is None:
        pytest.skip("TRITON_INTERPRET=0 and no CUDA device")
    if KERNEL_DEVICE == "cpu" and not interpreter_runs_the_kernel():
        pytest.skip(OLD_INTERPRETER)
    from posecore.ops.peaks_triton import find_peaks_triton

    def run(maps: torch.Tensor, block: int | None = None) -> torch.Tensor:
        return find_peaks_triton(maps.to(KERNEL_DEVICE), block=block).cpu()

    return run
