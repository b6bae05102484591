"""One synthetic video's content: the animal's motion, brief occlusions and the rendered frames.

A `Scene` holds everything that is true about a video before it is encoded: keypoints, what
is hidden when, the background. `frames()` renders it one frame at a time, so a long video
never sits in memory whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from posecore.synth.animal import KEYPOINT_INDEX, Motion, body_points, simulate
from posecore.synth.render import OCCLUDER_RADIUS, Occluder, draw_animal, finish, make_background

OCCLUSION_FRAMES = (3, 8)
"""Shortest and longest occlusion, in frames."""


@dataclass(frozen=True, eq=False)
class Scene:
    """A video's ground truth and what is needed to draw it.

    Attributes:
        motion: the animal's posture over T frames.
        points: float64 (T, P, 2) (x, y) of every named body point (`animal.POINTS`).
        occluders: one `Occluder` or None per frame (T,).
        background: float32 (H, W, 3) RGB, the empty arena.
        noise_std: per-frame Gaussian pixel noise (0-255 units).
        seed: seeds the pixel noise, so the same scene renders to the same frames.
    """

    motion: Motion
    points: np.ndarray
    occluders: tuple[Occluder | None, ...]
    background: np.ndarray
    noise_std: float
    seed: int

    @property
    def keypoints(self) -> np.ndarray:
        """float64 (T, K, 2) (x, y) of the labeled keypoints, in the order of `animal.KEYPOINTS`."""
        return self.points[:, KEYPOINT_INDEX]

    @property
    def visible(self) -> np.ndarray:
        """Visibility, bool (T, K): False where an occluder covers the keypoint's centre."""
        visible = np.ones(self.keypoints.shape[:2], dtype=bool)
        for t, occluder in enumerate(self.occluders):
            if occluder is not None:
                visible[t] = ~occluder.covers(self.keypoints[t])
        return visible

    def frames(self) -> Iterator[np.ndarray]:
        """Render the frames in order: uint8 (H, W, 3) RGB each, T of them."""
        rng = np.random.default_rng(self.seed)
        for t in range(len(self.points)):
            image = self.background.copy()
            draw_animal(image, self.points[t], self.motion.scale, self.occluders[t])
            yield finish(image, self.noise_std, rng)


def plan_occlusions(
    keypoints: np.ndarray, rate: float, scale: float, rng: np.random.Generator
) -> list[Occluder | None]:
    """Brief occlusions: a disk that passes over one keypoint for a few frames.

    In a frame with no occlusion, one starts with probability `rate` (never in the frame right
    after one ends, so each stays a separate, brief event). It lasts 3 to 8 frames,
    during which a disk of `OCCLUDER_RADIUS * scale` pixels travels in a straight line across a
    randomly chosen keypoint, covering it in the middle frame.

    Args:
        keypoints: float64 (T, K, 2) (x, y) of the keypoints.
        rate: chance per frame that an occlusion starts.
        scale: body size (`animal.body_scale`).
        rng: the random source.

    Returns:
        One `Occluder` or None per frame (T,).
    """
    n_frames = len(keypoints)
    radius = OCCLUDER_RADIUS * scale
    plan: list[Occluder | None] = [None] * n_frames
    t = 0
    while t < n_frames:
        if rng.random() >= rate:
            t += 1
            continue
        duration = int(rng.integers(OCCLUSION_FRAMES[0], OCCLUSION_FRAMES[1] + 1))
        middle = min(t + duration // 2, n_frames - 1)
        target = keypoints[middle, rng.integers(keypoints.shape[1])]
        centre = target + rng.uniform(-0.3, 0.3, size=2) * radius
        direction = rng.uniform(-np.pi, np.pi)
        velocity = 2.2 * radius / duration * np.array([np.cos(direction), np.sin(direction)])
        for u in range(t, min(t + duration, n_frames)):
            x, y = centre + (u - middle) * velocity
            plan[u] = Occluder(float(x), float(y), radius)
        t += duration + 1  # at least one clear frame between occlusions
    return plan


def make_scene(
    n_frames: int,
    width: int,
    height: int,
    fps: float,
    noise_std: float,
    occlusion_rate: float,
    rng: np.random.Generator,
) -> Scene:
    """A new random scene: background, motion and occlusions drawn from `rng`.

    Args:
        n_frames: number of frames T.
        width: frame width W in pixels.
        height: frame height H in pixels.
        fps: frames per second (the motion is in real time).
        noise_std: per-frame Gaussian pixel noise (0-255 units).
        occlusion_rate: chance per frame that an occlusion starts.
        rng: the random source; the same state gives the same scene.

    Returns:
        The scene, ready to render.
    """
    background = make_background(height, width, rng)
    motion = simulate(n_frames, width, height, fps, rng)
    points = body_points(motion)
    occluders = plan_occlusions(points[:, KEYPOINT_INDEX], occlusion_rate, motion.scale, rng)
    seed = int(rng.integers(2**63))
    return Scene(motion, points, tuple(occluders), background, noise_std, seed)
