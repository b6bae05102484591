"""Training targets: Gaussian confidence maps at the labeled keypoints, and posture-graph maps.

A keypoint at image pixel (x, y) is placed in map cells with `posecore.geometry.image_to_map`,
the same conversion that inference inverts, so a perfect map's peak decodes back to (x, y).
"""

from __future__ import annotations

import torch

from posecore.geometry import image_to_map, map_to_image


def confidence_maps(
    keypoints: torch.Tensor, map_size: tuple[int, int], stride: int, sigma: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian confidence maps with their labeled-keypoint mask.

    Args:
        keypoints: (B, K, 2) as (x, y) in image pixels; NaN where not labeled. Or (B, I, K, 2),
            several animals per frame: each map is the largest of the animals' Gaussians.
        map_size: (h, w) of the maps in cells.
        stride: image pixels per map cell.
        sigma: the Gaussian's standard deviation in image pixels.

    Returns:
        maps: float32 (B, K, h, w), exp(-d^2 / (2 sigma^2)) with d the distance in image pixels,
            1 at the keypoint; all zero for an unlabeled keypoint.
        mask: bool (B, K), True where the keypoint is labeled (finite x and y); a loss must
            skip the maps where it is False rather than train them towards zero. With several
            animals per frame every map is labeled: a frame's labels name all of its animals, so
            a map without any is known to be empty.
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    if keypoints.ndim == 4:  # (B, I, K, 2): one Gaussian per animal, the largest wins
        b, i, k = keypoints.shape[:3]
        maps, _ = confidence_maps(keypoints.reshape(b * i, k, 2), map_size, stride, sigma)  # (B * I, K, h, w)
        maps = maps.reshape(b, i, k, *maps.shape[-2:]).amax(dim=1) if i else maps.new_zeros((b, k, *map_size))
        return maps, torch.ones((b, k), dtype=torch.bool, device=keypoints.device)
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


def graph_maps(
    keypoints: torch.Tensor,
    skeleton: tuple[tuple[int, int], ...],
    map_size: tuple[int, int],
    stride: int,
    sigma: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """DeepPoseKit's posture-graph maps: one blurred line segment per skeleton edge.

    Each edge (i, j) gets a map exp(-d^2 / (2 sigma^2)), with d the distance in image pixels
    from a cell's centre to the segment between keypoints i and j: 1 along the bone, falling
    off across it as the keypoint Gaussians do. Extra supervision that ties the keypoints of
    one animal together; inference reads only the keypoint maps.

    Args:
        keypoints: (B, K, 2) as (x, y) in image pixels; NaN where not labeled.
        skeleton: E edges as pairs of keypoint indices.
        map_size: (h, w) of the maps in cells.
        stride: image pixels per map cell.
        sigma: the line's Gaussian standard deviation in image pixels.

    Returns:
        maps: float32 (B, E, h, w); all zero for an edge with an unlabeled end.
        mask: bool (B, E), True where both ends are labeled.
    """
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    batch, h, w = keypoints.shape[0], *map_size
    if not skeleton:
        return keypoints.new_zeros((batch, 0, h, w), dtype=torch.float32), torch.zeros(
            (batch, 0), dtype=torch.bool, device=keypoints.device
        )
    edges = torch.tensor(skeleton, dtype=torch.long, device=keypoints.device)  # (E, 2)
    keypoints = keypoints.float()
    start, end = keypoints[:, edges[:, 0]], keypoints[:, edges[:, 1]]  # (B, E, 2) each
    mask = torch.isfinite(start).all(dim=-1) & torch.isfinite(end).all(dim=-1)  # (B, E)
    start = torch.where(mask.unsqueeze(-1), start, 0.0)
    end = torch.where(mask.unsqueeze(-1), end, 0.0)
    cols = map_to_image(torch.arange(w, dtype=torch.float32, device=keypoints.device), stride)  # (w,) pixels
    rows = map_to_image(torch.arange(h, dtype=torch.float32, device=keypoints.device), stride)  # (h,) pixels
    px = cols.view(1, 1, 1, w) - start[..., 0, None, None]  # (B, E, 1, w), cell centre minus start
    py = rows.view(1, 1, h, 1) - start[..., 1, None, None]  # (B, E, h, 1)
    dx, dy = (end - start).unbind(-1)  # (B, E) each, the bone
    length2 = (dx**2 + dy**2).clamp_min(1e-12)[..., None, None]  # (B, E, 1, 1)
    t = ((px * dx[..., None, None] + py * dy[..., None, None]) / length2).clamp(0.0, 1.0)  # (B, E, h, w)
    d2 = (px - t * dx[..., None, None]) ** 2 + (py - t * dy[..., None, None]) ** 2  # (B, E, h, w) squared pixels
    maps = torch.exp(-d2 / (2 * sigma**2))
    return maps * mask[..., None, None], mask


def training_targets(
    keypoints: torch.Tensor,
    map_size: tuple[int, int],
    stride: int,
    sigma: float,
    skeleton: tuple[tuple[int, int], ...] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keypoint maps, then posture-graph maps when a skeleton is given: what the model is trained on.

    Args:
        keypoints: (B, K, 2) as (x, y) in image pixels; NaN where not labeled.
        map_size: (h, w) of the maps in cells.
        stride: image pixels per map cell.
        sigma: Gaussian standard deviation in image pixels (keypoints and bones alike).
        skeleton: E edges for posture-graph maps; None for keypoint maps only.

    Returns:
        maps: float32 (B, K + E, h, w) and mask: bool (B, K + E), the K keypoint channels first.
    """
    maps, mask = confidence_maps(keypoints, map_size, stride, sigma)
    if skeleton is None:
        return maps, mask
    bones, bone_mask = graph_maps(keypoints, skeleton, map_size, stride, sigma)
    return torch.cat([maps, bones], dim=1), torch.cat([mask, bone_mask], dim=1)
