"""Subpixel peak detection on confidence maps: the public `find_peaks` and its PyTorch reference.

Convention: maps are (B, K, H, W); a peak is (x, y, score) with x the column and y the row in
map cells (the centre of the top-left cell is (0, 0); `posecore.geometry.map_to_image` turns it
into image pixels) and score the map value at the integer maximum.

Refinement: a quadratic fit of the *log* map through the maximum and its two neighbours, one
axis at a time (the Taylor step of DARK, Zhang et al. 2020, on a 3-point stencil). A Gaussian
confidence map is exactly a quadratic in log space, so for the maps posecore trains on (a
Gaussian sampled at cell centres) the fit recovers the centre to float precision (median error
about 1e-5 cells at sigma 2, against 0.25 per axis for the plain argmax). The alternatives
were weaker here: a weighted mean over a 3x3 patch (sleap-nn's integral refinement) is biased
towards the patch centre unless sigma is small, and DeepPoseKit's upsampled registration only
reaches 1/upsampling of a cell and costs a second pass. The 3-point fit needs five loads per
map after the argmax, which is what lets the Triton kernel read each map once.
`benchmarks/peaks.py --accuracy` prints the comparison with and without noise.

Defined answers (the Triton kernel in `peaks_triton.py` gives the same):
- non-finite values (NaN, +-inf) are ignored; a map with no finite value gives (NaN, NaN, NaN);
- several equal maxima (a flat map included): the first in row-major order;
- an axis where the maximum has no finite neighbour on one side (a border, or a NaN next to
  it) gets no offset along that axis; zero curvature (a flat neighbourhood) gives no offset;
- values at or below 1e-10 count as 1e-10 in the log (maps are non-negative confidences);
- float16 and bfloat16 are compared as stored and refined in float32, float64 is cast to
  float32 first; the output is always float32 on the input's device.
"""

from __future__ import annotations

import functools
from typing import Literal

import torch

from posecore.ops.peak_maps import LOG_FLOOR, check_maps

__all__ = ["LOG_FLOOR", "Impl", "argmax_maps", "check_maps", "find_peaks", "find_peaks_reference", "refine_peaks"]

Impl = Literal["auto", "reference", "triton"]


def refine_peaks(maps: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Refine integer peaks to subpixel (x, y) with the log-quadratic fit and read their score.

    Args:
        maps: confidence maps (B, K, H, W), float32, float16 or bfloat16.
        index: row-major flat index (row * W + column) of each peak, (B, K, P), int64 in [0, H*W).

    Returns:
        (B, K, P, 3) float32: x (column), y (row) in map cells, and the map value at the peak.
        Callers mark peaks that do not exist (all-NaN maps, empty slots) themselves.
    """
    b, k, h, w = maps.shape
    p = index.shape[-1]
    flat = maps.reshape(b * k, h * w)  # (N, H*W)
    index = index.reshape(b * k, p)  # (N, P)
    row = torch.div(index, w, rounding_mode="floor")
    col = index - row * w
    # Centre, left, right, up, down of every peak: (N, P, 5).
    step = torch.tensor([0, -1, 1, -w, w], device=maps.device)
    near = (index.unsqueeze(-1) + step).clamp(0, h * w - 1)
    values = flat.gather(1, near.reshape(b * k, p * 5)).reshape(b * k, p, 5).float()
    has = torch.stack([col >= 0, col > 0, col < w - 1, row > 0, row < h - 1], dim=-1) & torch.isfinite(values)
    logs = torch.log(values.clamp_min(LOG_FLOOR))  # (N, P, 5)
    dx = _vertex(logs[..., 1], logs[..., 0], logs[..., 2], has[..., 1] & has[..., 2])
    dy = _vertex(logs[..., 3], logs[..., 0], logs[..., 4], has[..., 3] & has[..., 4])
    peaks = torch.stack([col.float() + dx, row.float() + dy, values[..., 0]], dim=-1)  # (N, P, 3)
    return peaks.reshape(b, k, p, 3)


def _vertex(before: torch.Tensor, centre: torch.Tensor, after: torch.Tensor, usable: torch.Tensor) -> torch.Tensor:
    """Offset of the vertex of the parabola through (-1, before), (0, centre), (1, after), in [-0.5, 0.5].

    Zero where `usable` is False or the curvature is not negative (flat or not a maximum).
    """
    curvature = before - 2 * centre + after
    bent = usable & (curvature < 0)
    offset = 0.5 * (before - after) / torch.where(bent, curvature, -1.0)
    return torch.where(bent, offset.clamp(-0.5, 0.5), 0.0)


def argmax_maps(maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """First maximum of each map in row-major order, ignoring non-finite values.

    Args:
        maps: (B, K, H, W), float32, float16 or bfloat16.

    Returns:
        score (B, K) in the input dtype (-inf where a map has no finite value) and the flat
        index row * W + column (B, K), int64 (0 where a map has no finite value).
    """
    b, k, h, w = maps.shape
    rows = maps.reshape(b * k, h, w)  # (N, H, W)
    score, index = _first_max(rows)
    bad = ~torch.isfinite(score)  # a NaN or inf somewhere, or nothing finite: (N,)
    if bad.any():
        sub = rows[bad]  # (M, H, W), only the maps that need it
        sub = torch.where(torch.isfinite(sub), sub, torch.tensor(-torch.inf, dtype=sub.dtype, device=sub.device))
        score[bad], index[bad] = _first_max(sub)
        index = torch.where(torch.isfinite(score), index, 0)
    return score.reshape(b, k), index.reshape(b, k)


def _first_max(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Maximum and its first row-major flat index of each (H, W) map in (N, H, W).

    Two levels, because `amax` is vectorised and `max(dim)` with indices is several times
    slower: the maximum of every row (N, H), the first row holding the overall maximum, then
    the first column holding it within that row. NaN propagates into the score.
    """
    n, _, w = rows.shape
    row_max = rows.amax(dim=-1)  # (N, H)
    score, row = row_max.max(dim=-1)  # (N,), first row with the maximum
    line = rows[torch.arange(n, device=rows.device), row]  # (N, W)
    col = line.argmax(dim=-1)  # (N,), first column with the maximum
    return score, row * w + col


def find_peaks_reference(maps: torch.Tensor) -> torch.Tensor:
    """PyTorch reference peak finder: (B, K, H, W) in, (B, K, 3) float32 out as (x, y, score).

    x is the column and y the row in map cells, subpixel; score is the map value at the integer
    maximum. See the module docstring for NaN, flat maps, ties and borders.
    """
    maps = check_maps(maps)
    score, index = argmax_maps(maps)  # (B, K), (B, K)
    peaks = refine_peaks(maps, index.unsqueeze(-1)).squeeze(2)  # (B, K, 3)
    return torch.where(torch.isfinite(score).unsqueeze(-1), peaks, torch.nan)


@functools.cache
def triton_available() -> bool:
    """Whether Triton can be imported (checked once, only when a CUDA tensor asks)."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def find_peaks(maps: torch.Tensor, impl: Impl = "auto") -> torch.Tensor:
    """Find the subpixel peak of each map: (B, K, H, W) in, (B, K, 3) float32 out as (x, y, score).

    x is the column and y the row in map cells (convert with `posecore.geometry.map_to_image`),
    score the map value at the peak; (NaN, NaN, NaN) for a map with no finite value.

    Args:
        maps: confidence maps (B, K, H, W), any floating dtype, any device.
        impl: "auto" runs the fused Triton kernel on CUDA tensors when Triton is installed and
            the PyTorch reference otherwise; "reference" and "triton" force one (the kernel
            runs CPU tensors only under TRITON_INTERPRET=1). Both give the same answer.
    """
    if impl not in ("auto", "reference", "triton"):
        raise ValueError(f"unknown peak finder implementation {impl!r}; use 'auto', 'reference' or 'triton'")
    use_kernel = impl == "triton" or (impl == "auto" and maps.is_cuda and triton_available())
    if use_kernel:
        from posecore.ops.peaks_triton import find_peaks_triton

        return find_peaks_triton(maps)
    return find_peaks_reference(maps)
