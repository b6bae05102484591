"""Training targets: Gaussian confidence maps at the labeled keypoints.

A keypoint at image pixel (x, y) is placed in map cells with `posecore.geometry.image_to_map`,
the same conversion that inference inverts, so a perfect map's peak decodes back to (x, y).
"""

from __future__ import annotations

import torch

from posecore.geometry import image_to_map


def confidence_maps(
    keypoints: torch.Tensor, map_size: tuple[int, int], stride: int, sigma: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian confidence maps with their labeled-keypoint mask.

    Args:
        keypoints: (B, K, 2) as (x, y) in image pixels; NaN where not labeled.
        map_size: (h, w) of the maps in cells.
        stride: image pixels per map cell.
        sigma: the Gaussian's standard deviation in image pixels.

    Returns:
        maps: float32 (B, K, h, w), exp(-d^2 / (2 sigma^2)) with d the distance in image pixels,
            1 at the keypoint; all zero for an unlabeled keypoint.
        mask: bool (B, K), True where the keypoint is labeled (finite x and y); a loss must
            skip the maps where it is False rather than train them towards zero.
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    h, w = map_size
    keypoints = keypoints.float()
    mask = torch.isfinite(keypoints).all(dim=-1)  # (B, K)
    centre = image_to_map(torch.where(mask.unsqueeze(-1), keypoints, 0.0), stride)  # (B, K, 2) cells
    sigma_cells = sigma / stride
    cols = torch.arange(w, dtype=torch.float32, device=keypoints.device)
    rows = torch.arange(h, dtype=torch.float32, device=keypoints.device)
    gx = torch.exp(-((cols - centre[..., 0:1]) ** 2) / (2 * sigma_cells**2))  # (B, K, w)
    gy = torch.exp(-((rows - centre[..., 1:2]) ** 2) / (2 * sigma_cells**2))  # (B, K, h)
    maps = gy.unsqueeze(-1) * gx.unsqueeze(-2)  # (B, K, h, w), separable Gaussian
    return maps * mask[..., None, None], mask
