"""Several peaks per confidence map, for frames with several animals.

A cell is a peak when it is the maximum of the (2r+1) x (2r+1) window around it (window
non-maximum suppression, r = `nms_radius`) and its value is strictly above `threshold`. Of the
peaks, the `max_peaks` highest per map are kept, highest first, and each is refined with the
same log-quadratic fit as the single-peak finder (`posecore.ops.peaks.refine_peaks`), so a map
with one Gaussian gives the same (x, y, score) through either finder.

Defined answers: non-finite values are ignored (they never suppress a neighbour and are never
peaks); on a plateau only its first cell in row-major order is a peak (a cell must be strictly
above the window cells before it in row-major order and at least as high as those after it);
equal scores are ranked by row-major order; slots without a peak are (NaN, NaN, NaN).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from posecore.ops.peaks import check_maps, refine_peaks


def local_maxima(maps: torch.Tensor, nms_radius: int = 1) -> torch.Tensor:
    """Mask of window maxima: (B, K, H, W) float in, (B, K, H, W) bool out.

    True where a cell is finite, strictly above every finite cell of its (2r+1) x (2r+1) window
    that comes before it in row-major order, and at least as high as every one after it.
    """
    if nms_radius < 1:
        raise ValueError(f"nms_radius must be at least 1, got {nms_radius}")
    r = nms_radius
    h, w = maps.shape[-2:]
    value = torch.where(torch.isfinite(maps), maps.float(), -torch.inf)  # (B, K, H, W)
    padded = F.pad(value, (r, r, r, r), value=-torch.inf)  # (B, K, H+2r, W+2r)
    peak = value > -torch.inf
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dy == 0 and dx == 0:
                continue
            other = padded[..., r + dy : r + dy + h, r + dx : r + dx + w]  # (B, K, H, W)
            before = dy < 0 or (dy == 0 and dx < 0)
            peak &= value > other if before else value >= other
    return peak


def _order_key(value: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """int64 key that sorts by float32 `value` descending, then `index` ascending, with no ties.

    The float's bits become an int32 with the same order (negative floats have their
    magnitude bits flipped), shifted into the high half; the low half is 2**32 - 1 - index.
    """
    bits = value.float().view(torch.int32).long()
    ordered = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits)
    return ordered * 2**32 + (2**32 - 1 - index)


def find_peaks_multi(maps: torch.Tensor, max_peaks: int, threshold: float = 0.2, nms_radius: int = 1) -> torch.Tensor:
    """Up to `max_peaks` subpixel peaks per map: (B, K, H, W) in, (B, K, max_peaks, 3) float32 out.

    Each peak is (x, y, score): x the column and y the row in map cells, score the map value at
    the integer peak; peaks come highest score first, unused slots are NaN.

    Args:
        maps: confidence maps (B, K, H, W), any floating dtype, any device.
        max_peaks: how many peaks to keep per map (at least 1).
        threshold: a peak's value must be strictly above this.
        nms_radius: r of the (2r+1) x (2r+1) window a peak must dominate (at least 1).
    """
    maps = check_maps(maps)
    if max_peaks < 1:
        raise ValueError(f"max_peaks must be at least 1, got {max_peaks}")
    b, k, h, w = maps.shape
    value = maps.float()
    candidate = local_maxima(value, nms_radius) & (value > threshold)  # (B, K, H, W)
    flat_value = value.reshape(b, k, h * w)  # (B, K, H*W)
    flat_index = torch.arange(h * w, device=maps.device).expand(b, k, h * w)
    key = torch.where(
        candidate.reshape(b, k, h * w), _order_key(flat_value, flat_index), torch.iinfo(torch.int64).min
    )  # (B, K, H*W)
    n = min(max_peaks, h * w)
    top_key, top_index = key.topk(n, dim=-1)  # (B, K, n), highest first
    found = top_key > torch.iinfo(torch.int64).min
    top_index = torch.where(found, top_index, 0)
    peaks = refine_peaks(maps, top_index)  # (B, K, n, 3)
    peaks = torch.where(found.unsqueeze(-1), peaks, torch.nan)
    if n < max_peaks:
        peaks = F.pad(peaks, (0, 0, 0, max_peaks - n), value=torch.nan)  # (B, K, max_peaks, 3)
    return peaks
