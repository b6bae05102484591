"""The synthetic animal in 3D, seen by a rig: exact 3D keypoints and their views in every camera.

The animal walks on the arena floor with the motion of `posecore.synth.animal` (its body plan
scaled to `MM_PER_UNIT` millimetres per unit, snout to tail base about 62 mm), each body point
at its own height above the floor, bobbing by a millimetre or two. World frame as in
`posecore.synth.rig`: z up, the arena's centre at the origin; the 2D motion's image y (down)
becomes -y, so that the animal's left stays its left seen from above.

Each view is drawn with the 2D renderer at the projected body points, at the scale the camera
sees the body at its depth: an approximation of the animal's look (no foreshortening of its
outline), while the keypoints are exact projections of the 3D points, which is what the tests
check against.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from posecore.synth.animal import KEYPOINT_INDEX, POINTS, body_points, simulate, smooth_noise
from posecore.synth.render import draw_animal, finish, make_background
from posecore.threed.rig import Rig

MM_PER_UNIT = 2.0
"""Millimetres per body-plan unit (a unit is a pixel of the 2D synth's 128-pixel frame)."""
ARENA_UNITS = 128
"""The 2D motion's frame, in body-plan units: the arena is ARENA_UNITS * MM_PER_UNIT = 256 mm wide."""
HEIGHTS_MM = {
    "snout": 12.0,
    "neck": 22.0,
    "mid": 28.0,
    "tailbase": 18.0,
    "tail1": 12.0,
    "tail2": 7.0,
    "tail3": 4.0,
    "tailtip": 2.0,
    "left_ear": 32.0,
    "right_ear": 32.0,
    "left_eye": 24.0,
    "right_eye": 24.0,
}
"""Height of each body point above the floor."""


@dataclass(frozen=True, eq=False)
class Animal3D:
    """The animal over T frames.

    Attributes:
        points: float64 (T, P, 3) every body point (`animal.POINTS`), world mm.
        fps: frames per second.
    """

    points: np.ndarray
    fps: float

    @property
    def keypoints(self) -> np.ndarray:
        """float64 (T, K, 3) the labeled keypoints (`animal.KEYPOINTS`), world mm."""
        return self.points[:, KEYPOINT_INDEX]


def simulate_3d(n_frames: int, fps: float, rng: np.random.Generator) -> Animal3D:
    """The animal walking for `n_frames` frames."""
    motion = simulate(n_frames, ARENA_UNITS, ARENA_UNITS, fps, rng)
    flat = body_points(motion)  # (T, P, 2) body-plan units, image axes
    centre = (ARENA_UNITS - 1) / 2
    x = (flat[..., 0] - centre) * MM_PER_UNIT
    y = -(flat[..., 1] - centre) * MM_PER_UNIT
    bob = 1.5 * smooth_noise(rng, n_frames, max(0.3 * fps, 1.0))  # (T,) mm
    z = np.array([HEIGHTS_MM[name] for name in POINTS])[None, :] + bob[:, None]
    return Animal3D(np.stack([x, y, z], axis=-1), fps)


def project_views(rig: Rig, points: np.ndarray) -> np.ndarray:
    """World points (T, P, 3) as each camera sees them: float64 (C, T, P, 2) pixels, NaN outside its image."""
    views = rig.project(points)  # (C, T, P, 2)
    for c, camera in enumerate(rig.cameras):
        width, height = camera.size
        inside = (views[c, ..., 0] >= 0) & (views[c, ..., 0] <= width - 1)
        inside &= (views[c, ..., 1] >= 0) & (views[c, ..., 1] <= height - 1)
        views[c] = np.where(inside[..., None], views[c], np.nan)
    return views


def render_view(
    rig: Rig, animal: Animal3D, camera: int, *, noise_std: float = 3.0, seed: int = 0
) -> Iterator[np.ndarray]:
    """The frames of one camera's video: uint8 (H, W, 3) RGB each, T of them."""
    cam = rig.cameras[camera]
    width, height = cam.size
    rng = np.random.default_rng(seed)
    background = make_background(height, width, rng)
    pixels = cam.project(animal.points)  # (T, P, 2)
    depth = cam.to_camera(animal.points[:, POINTS.index("mid")])[:, 2]  # (T,)
    for t in range(len(pixels)):
        image = background.copy()
        if np.isfinite(pixels[t]).all():
            with np.errstate(invalid="ignore"):  # segments foreshortened to less than their radii
                draw_animal(image, pixels[t], cam.focal * MM_PER_UNIT / depth[t])
        yield finish(image, noise_std, rng)
