"""Conversions between image pixels and confidence-map cells.

Convention (docs/design.md, "Coordinates"): x is the column, y the row, and the centre of the
top-left pixel is (0, 0). A map at output stride s has one cell per s x s block of image
pixels; cell j covers image pixels [j*s, (j+1)*s), whose centre is at j*s + (s - 1) / 2.
Targets (training) and peaks (inference) both convert through this module, so the two can
never disagree by half a cell.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor, float)


def image_to_map(coords: Array, stride: int) -> Array:
    """Image pixel coordinates to map cell coordinates at `stride` (any shape, x and y alike)."""
    return (coords - (stride - 1) / 2) / stride


def map_to_image(coords: Array, stride: int) -> Array:
    """Map cell coordinates at `stride` to image pixel coordinates (inverse of `image_to_map`)."""
    return coords * stride + (stride - 1) / 2
