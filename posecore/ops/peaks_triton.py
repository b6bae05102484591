"""Fused Triton kernel for subpixel peak finding: each map is read once, three numbers written.

One program per map. Pass 1 streams the map in BLOCK-sized chunks, keeping a running maximum
and the first index that reached it per lane (a strict `>` keeps the earliest index on ties);
a final reduction takes the lowest index among the lanes holding the overall maximum, which
is the first maximum in row-major order. Pass 2 loads the maximum and its four neighbours
(cached; the map was just read) and applies the same log-quadratic fit as the reference in
`peaks.py`, whose module docstring defines NaN, flat, tie and border behaviour. Values are
compared and refined in float32 (exact for float16 and bfloat16).

This module imports Triton at import time; `posecore.ops.find_peaks` imports it only when a
CUDA tensor arrives. The kernel is built on first launch for the TRITON_INTERPRET setting in
force then, and uses only Triton builtins, so tests can run it on CPU tensors through Triton's
interpreter even when triton was imported before TRITON_INTERPRET was set.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from posecore.ops.peak_maps import LOG_FLOOR, check_maps

MAX_BLOCK = 2048
"""Largest chunk of a map that one program holds in registers per step of pass 1."""


def _find_peaks_kernel(maps_ptr, out_ptr, size, width, BLOCK: tl.constexpr, LOG_FLOOR: tl.constexpr):
    """Peak of map `program_id` in maps (N, size = H*W) → out (N, 3) as (x, y, score), float32.

    `size` is an argument rather than height * width so that Triton specialises it when it is a
    multiple of 16, which makes every map's start aligned and the loads vectorised.
    """
    pid = tl.program_id(0)
    base = maps_ptr + pid.to(tl.int64) * size
    lanes = tl.arange(0, BLOCK)

    # Pass 1: per-lane running maximum and the first index that reached it.
    best = tl.full([BLOCK], float("-inf"), tl.float32)
    first = tl.full([BLOCK], 0, tl.int32)
    for start in range(0, size, BLOCK):
        offs = start + lanes
        v = tl.load(base + offs, mask=offs < size, other=float("-inf")).to(tl.float32)
        v = tl.where(tl.abs(v) < float("inf"), v, float("-inf"))  # NaN and +-inf are ignored
        take = v > best
        best = tl.where(take, v, best)
        first = tl.where(take, offs, first)
    score = tl.reduce(best, 0, _max_combine)
    index = tl.reduce(tl.where(best == score, first, size), 0, _min_combine)
    found = score > float("-inf")
    index = tl.where(found, index, 0)
    row = index // width
    col = index - row * width

    # Pass 2: the maximum and its four neighbours, in float32.
    c = tl.load(base + index).to(tl.float32)
    has_l = col > 0
    has_r = col < width - 1
    has_u = row > 0
    has_d = index + width < size  # row < H - 1
    lv = tl.load(base + index - 1, mask=has_l, other=0.0).to(tl.float32)
    rv = tl.load(base + index + 1, mask=has_r, other=0.0).to(tl.float32)
    uv = tl.load(base + index - width, mask=has_u, other=0.0).to(tl.float32)
    dv = tl.load(base + index + width, mask=has_d, other=0.0).to(tl.float32)
    has_x = has_l & has_r & (tl.abs(lv) < float("inf")) & (tl.abs(rv) < float("inf"))
    has_y = has_u & has_d & (tl.abs(uv) < float("inf")) & (tl.abs(dv) < float("inf"))
    lc = tl.log(tl.maximum(c, LOG_FLOOR))
    ll = tl.log(tl.maximum(lv, LOG_FLOOR))
    lr = tl.log(tl.maximum(rv, LOG_FLOOR))
    lu = tl.log(tl.maximum(uv, LOG_FLOOR))
    ld = tl.log(tl.maximum(dv, LOG_FLOOR))
    cx = ll - 2.0 * lc + lr
    cy = lu - 2.0 * lc + ld
    bent_x = has_x & (cx < 0.0)
    bent_y = has_y & (cy < 0.0)
    dx = tl.where(bent_x, 0.5 * (ll - lr) / tl.where(bent_x, cx, -1.0), 0.0)
    dy = tl.where(bent_y, 0.5 * (lu - ld) / tl.where(bent_y, cy, -1.0), 0.0)
    dx = tl.minimum(tl.maximum(dx, -0.5), 0.5)
    dy = tl.minimum(tl.maximum(dy, -0.5), 0.5)

    nan = float("nan")
    out = out_ptr + pid.to(tl.int64) * 3
    tl.store(out, tl.where(found, col.to(tl.float32) + dx, nan))
    tl.store(out + 1, tl.where(found, row.to(tl.float32) + dy, nan))
    tl.store(out + 2, tl.where(found, c, nan))


def _max_combine_fn(a, b):
    """Larger of two values (reduction step)."""
    return tl.maximum(a, b)


def _min_combine_fn(a, b):
    """Smaller of two values (reduction step)."""
    return tl.minimum(a, b)


# The kernel uses Triton builtins and these two combine functions only, not Triton's own
# @jit helpers (tl.max, tl.zeros), which are fixed to interpreted or compiled when triton is
# imported. Compiled kernels need JITFunction combines; the interpreter calls their `.fn`.
_max_combine = triton.JITFunction(_max_combine_fn)
_min_combine = triton.JITFunction(_min_combine_fn)
_KERNELS: dict[bool, object] = {}


def _kernel() -> object:
    """The jitted kernel for the current TRITON_INTERPRET setting (built once per setting)."""
    interpret = os.environ.get("TRITON_INTERPRET", "0") == "1"
    if interpret not in _KERNELS:
        _KERNELS[interpret] = triton.jit(_find_peaks_kernel)
    return _KERNELS[interpret]


def find_peaks_triton(maps: torch.Tensor, block: int | None = None) -> torch.Tensor:
    """Fused Triton peak finder: (B, K, H, W) in, (B, K, 3) float32 out as (x, y, score).

    Same answer as `posecore.ops.peaks.find_peaks_reference` (x the column, y the row, in map
    cells). CUDA tensors run compiled; CPU tensors only under TRITON_INTERPRET=1.

    Args:
        maps: confidence maps (B, K, H, W), any floating dtype.
        block: values per chunk in pass 1 (a power of two); default: the map size rounded up
            to a power of two, at most 2048. Tests set it small to exercise the chunk loop.
    """
    maps = check_maps(maps).contiguous()
    if not maps.is_cuda and os.environ.get("TRITON_INTERPRET", "0") != "1":
        raise ValueError(f"the Triton peak kernel needs a CUDA tensor (or TRITON_INTERPRET=1), got {maps.device}")
    b, k, h, w = maps.shape
    if block is None:
        block = min(triton.next_power_of_2(h * w), MAX_BLOCK)
    if block < 1 or block & (block - 1):
        raise ValueError(f"block must be a power of two, got {block}")
    out = torch.empty((b, k, 3), dtype=torch.float32, device=maps.device)
    if b * k == 0:
        return out
    kernel = _kernel()
    warps = 4 if block <= 1024 else 8
    kernel[(b * k,)](maps, out, h * w, w, BLOCK=block, LOG_FLOOR=LOG_FLOOR, num_warps=warps, enable_fp_fusion=False)
    return out
