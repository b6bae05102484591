"""Top-down multi-animal pose: where each animal is (a centroid model), then its pose on a crop around it.

The two models are posecore's own single-animal models trained on two datasets derived from a
multi-animal one:

- `centroid_dataset`: the frames scaled by `centroid_scale`, each animal's centre as the one
  keypoint "centroid" of a multi-animal dataset, so the model learns one peak per animal
  (`posecore.train.targets.confidence_maps` with several animals per frame);
- `instance_dataset`: one square crop of `crop_size` pixels per labeled animal, centred on it,
  labeled with that animal's keypoints only (a "centred instance" model, as SLEAP's: the other
  animals in the crop are background it learns to leave alone).

At inference (`posecore.multi.predict`) the centroid model's peaks (`find_peaks_multi`) place
the crops, cut by the same `crop_at`, and the instance model's keypoints are moved back into the
frame. Why top-down: docs/multianimal.md.

Coordinates (DESIGN.md): x the column, y the row, the centre of the top-left pixel at (0, 0).
Scaling by s maps x to (x + 0.5) s - 0.5 (`to_scaled`), as `torch.nn.functional.interpolate`
samples without aligned corners, so a point keeps its place on the scaled image.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from posecore.errors import InputError
from posecore.io.dataset import TrainingDataset

CENTROID = "centroid"
"""The centroid model's one keypoint."""


@dataclass(frozen=True)
class TopDownConfig:
    """How animals are found and cropped.

    Attributes:
        max_animals: the most animals a frame holds (centroid peaks kept per frame).
        centroid_scale: the centroid model sees frames scaled by this (0 < s <= 1): it only
            has to say where animals are, and small frames make it fast.
        crop_size: side of the square crop around each animal, in pixels (0: from the labels,
            `crop_margin` x the largest animal, up to a multiple of 32).
        crop_margin: with crop_size 0, how much larger than the largest labeled animal a crop is.
        anchor: the keypoint whose position is an animal's centre ("": the middle of its
            labeled keypoints' box, which a missing keypoint moves least).
        peak_threshold: centroid peaks below this are no animal.
        nms_radius: centroid peaks nearer than this many map cells are one animal.
        duplicate_distance: two instances whose keypoints lie this close on average (as a
            fraction of the crop size) are one animal seen from two centroid peaks; the
            lower-scoring one is dropped.
    """

    max_animals: int
    centroid_scale: float = 0.5
    crop_size: int = 0
    crop_margin: float = 1.25
    anchor: str = ""
    peak_threshold: float = 0.2
    nms_radius: int = 2
    duplicate_distance: float = 0.1

    def __post_init__(self) -> None:
        problems = []
        if isinstance(self.max_animals, bool) or not isinstance(self.max_animals, int) or self.max_animals < 1:
            problems.append(f"max_animals must be an integer >= 1, got {self.max_animals!r}")
        if not 0 < self.centroid_scale <= 1:
            problems.append(f"centroid_scale must be in (0, 1], got {self.centroid_scale!r}")
        if self.crop_size < 0 or (self.crop_size and self.crop_size < 16):
            problems.append(f"crop_size must be 0 (from the labels) or at least 16, got {self.crop_size!r}")
        if self.crop_margin < 1 or self.nms_radius < 1 or not 0 <= self.peak_threshold < 1:
            problems.append("crop_margin must be >= 1, nms_radius >= 1 and peak_threshold in [0, 1)")
        if self.duplicate_distance < 0:
            problems.append(f"duplicate_distance must be >= 0, got {self.duplicate_distance!r}")
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str | Path = "<config>") -> TopDownConfig:
        """The config from a mapping (the workflow's `animals` section); an unknown key is an InputError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(
                source, f"unknown key; known: {', '.join(sorted(known))}", where=f"key animals.{unknown[0]}"
            )
        try:
            return cls(**data)
        except (TypeError, ValueError) as error:
            raise InputError(source, str(error), where="key animals") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain types, for the model file."""
        return asdict(self)


def centres(keypoints: np.ndarray, anchor: int | None = None) -> np.ndarray:
    """Each animal's centre: its anchor keypoint where labeled, else the middle of its labeled keypoints' box.

    Args:
        keypoints: (..., K, 2) (x, y), NaN where not labeled.
        anchor: index of the anchor keypoint, or None.

    Returns:
        (..., 2); NaN for an animal with no labeled keypoint.
    """
    points = np.asarray(keypoints, dtype=np.float64)
    labeled = np.isfinite(points).all(axis=-1)  # (..., K)
    any_labeled = labeled.any(axis=-1)[..., None]  # (..., 1)
    low = np.where(any_labeled, np.where(labeled[..., None], points, np.inf).min(axis=-2), 0.0)
    high = np.where(any_labeled, np.where(labeled[..., None], points, -np.inf).max(axis=-2), 0.0)
    middle = np.where(any_labeled, (low + high) / 2, np.nan)
    if anchor is None:
        return middle
    at_anchor = points[..., anchor, :]
    return np.where(np.isfinite(at_anchor).all(axis=-1)[..., None], at_anchor, middle)


def anchor_index(config: TopDownConfig, keypoint_names: Sequence[str]) -> int | None:
    """The anchor keypoint's index, None for the box middle; an unknown name is a ValueError."""
    if not config.anchor:
        return None
    if config.anchor not in keypoint_names:
        raise ValueError(f"anchor {config.anchor!r} is not a keypoint of {list(keypoint_names)}")
    return list(keypoint_names).index(config.anchor)


def crop_size_for(dataset: TrainingDataset, config: TopDownConfig, multiple: int = 32) -> int:
    """The crop side in pixels: the config's, or `crop_margin` x twice the farthest labeled keypoint from its centre."""
    if config.crop_size:
        return config.crop_size
    points = dataset.keypoints  # (N, I, K, 2)
    reach = np.abs(points - centres(points, anchor_index(config, dataset.keypoint_names))[..., None, :])
    farthest = float(np.nanmax(reach, initial=0.0))
    return max(multiple, math.ceil(2 * farthest * config.crop_margin / multiple) * multiple)


def crop_corners(centre: np.ndarray, size: int) -> np.ndarray:
    """Top-left corners (int (..., 2), whole pixels) of size x size crops centred on `centre` (..., 2)."""
    return np.floor(np.asarray(centre, dtype=np.float64) + 0.5).astype(np.int64) - size // 2


def crop_at(images: np.ndarray, frames: np.ndarray, corners: np.ndarray, size: int) -> np.ndarray:
    """Cut size x size crops out of frames, zeros beyond their edges.

    Args:
        images: uint8 (B, H, W, C).
        frames: int (M,) the frame of each crop.
        corners: int (M, 2) each crop's top-left corner (x, y) in the frame (`crop_corners`).
        size: the crops' side.

    Returns:
        uint8 (M, size, size, C); a keypoint at (x, y) in the frame is at (x, y) - corner in its crop.
    """
    m, (height, width, channels) = len(frames), images.shape[1:]
    out = np.zeros((m, size, size, channels), dtype=np.uint8)
    for j in range(m):
        x0, y0 = (int(v) for v in corners[j])
        xs, ys = max(x0, 0), max(y0, 0)
        xe, ye = min(x0 + size, width), min(y0 + size, height)
        if xe > xs and ye > ys:
            out[j, ys - y0 : ye - y0, xs - x0 : xe - x0] = images[frames[j], ys:ye, xs:xe]
    return out


def scaled_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """(h, w) of an (H, W) frame scaled by `scale` (at least 1 each)."""
    return max(1, math.floor(height * scale)), max(1, math.floor(width * scale))


def scale_ratio(height: int, width: int, scale: float) -> np.ndarray:
    """The ratios (x, y) of scaled to original size that `scale_images` gives an (H, W) frame."""
    small_h, small_w = scaled_size(height, width, scale)
    return np.array([small_w / width, small_h / height])


def to_scaled(xy: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """Pixel coordinates (..., 2) in a frame scaled by `ratio` (x, y), pixel centres kept: (x + 0.5) r - 0.5."""
    return (xy + 0.5) * ratio - 0.5


def from_scaled(xy: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """The inverse of `to_scaled`."""
    return (xy + 0.5) / ratio - 0.5


def scale_images(images: Any, scale: float) -> Any:
    """Frames uint8 (B, H, W, C), array or tensor, scaled by `scale` (antialiased bilinear): uint8 (B, h, w, C)."""
    import torch  # the configs above are read where torch is not needed (the workflow's config check)
    from torch.nn import functional as F

    batch = torch.as_tensor(images)
    if scale == 1:
        return batch
    height, width = scaled_size(batch.shape[1], batch.shape[2], scale)
    pixels = batch.permute(0, 3, 1, 2).float()  # (B, C, H, W)
    small = F.interpolate(pixels, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return small.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()  # (B, h, w, C)


def centroid_dataset(dataset: TrainingDataset, config: TopDownConfig) -> TrainingDataset:
    """The centroid model's dataset: frames scaled by `centroid_scale`, each animal's centre its one keypoint."""
    anchor = anchor_index(config, dataset.keypoint_names)
    middle = centres(dataset.keypoints, anchor)[:, :, None, :]  # (N, I, 1, 2)
    height, width = dataset.image_size
    ratio = scale_ratio(height, width, config.centroid_scale)
    step = 16  # frames scaled at a time
    images = np.concatenate(
        [
            scale_images(dataset.images[i : i + step], config.centroid_scale).numpy()
            for i in range(0, len(dataset.images), step)
        ]
    )  # (N, h, w, C)
    sizes = np.maximum(np.floor(dataset.image_sizes * ratio[::-1]), 1).astype(np.int32)  # (N, 2) (h, w)
    return TrainingDataset(
        images=images,
        keypoints=to_scaled(middle, ratio).astype(np.float32),
        split=dataset.split,
        keypoint_names=(CENTROID,),
        source_video=dataset.source_video,
        source_frame=dataset.source_frame,
        source_path=dataset.source_path,
        image_sizes=np.minimum(sizes, images.shape[1:3]),
        tracks=dataset.tracks,
    )


def instance_dataset(dataset: TrainingDataset, config: TopDownConfig, crop_size: int) -> TrainingDataset:
    """The instance model's dataset: a crop centred on every labeled animal, labeled with that animal alone.

    Each crop keeps its frame's split, so no animal of a test frame is trained on.
    """
    anchor = anchor_index(config, dataset.keypoint_names)
    middle = centres(dataset.keypoints, anchor)  # (N, I, 2)
    frames, slots = np.nonzero(np.isfinite(middle).all(axis=-1))
    corners = crop_corners(middle[frames, slots], crop_size)  # (M, 2)
    images = crop_at(dataset.images, frames, corners, crop_size)
    keypoints = dataset.keypoints[frames, slots] - corners[:, None, :].astype(np.float32)  # (M, K, 2)
    return TrainingDataset(
        images=images,
        keypoints=keypoints.astype(np.float32),
        split=dataset.split[frames],
        keypoint_names=dataset.keypoint_names,
        skeleton=dataset.skeleton,
        swap_pairs=dataset.swap_pairs,
        source_video=_rows(dataset.source_video, frames),
        source_frame=_rows(dataset.source_frame, frames),
        source_path=_rows(dataset.source_path, frames),
    )


def _rows(values: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Per-frame provenance for each crop (empty when the dataset has none)."""
    return values[frames] if len(values) else values
