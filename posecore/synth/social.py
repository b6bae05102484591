"""Synthetic social scenes: two to four animals that cross and brush past each other, with exact ground truth.

`make_social_scene(config, rng)` scripts the animals' paths as a sequence of encounters: in each
episode one pair of animals walks to a meeting point from different directions and on through
it (a crossing, the bodies overlapping), or passes a body width apart (a near contact), while
the others walk elsewhere. Animals are drawn in depth order (`SocialScene.depth`), so the one
on top hides the other where they overlap, and a keypoint under another animal's body is not
visible (`SocialScene.visible`). Identities are the animals' indices (track names
`animal0`, `animal1`, ...); `SocialScene.encounters` counts, from the ground truth itself, how
often two animals came close.

The body is the single-animal synth's (`posecore.synth.animal`); `appearance` "distinct" gives
each animal its own colours (for an identity model), "identical" makes them indistinguishable.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np

from posecore.synth.animal import KEYPOINT_INDEX, N_TAIL_SEGMENTS, Motion, body_points, smooth_noise
from posecore.synth.render import DEFAULT_PALETTE, Palette, animal_distance, draw_animal, finish, make_background

Appearance = Literal["identical", "distinct"]

TINTS = ((1.0, 1.0, 1.0), (1.5, 1.25, 0.7), (0.55, 0.6, 0.9), (1.35, 0.7, 0.7))
"""Per-animal colour gains for `appearance="distinct"`: natural, sandy, bluish grey, reddish."""

BODY_LENGTH = 57.0
"""Snout to tail tip of the body plan, in body-plan pixels (`posecore.synth.animal`)."""

CENTRE_MARGIN = 40.0
"""How far (body-plan pixels) the mid-body stays from the frame's edges, so the whole animal stays in view."""


@dataclass(frozen=True)
class SocialConfig:
    """What social scene to make; the same config always makes the same scene.

    Attributes:
        n_animals: animals in the scene (2 to 4).
        n_frames: frames T.
        width: frame width in pixels (even).
        height: frame height in pixels (even).
        fps: frames per second.
        body_scale: animal size in pixels per body-plan pixel (1.0: 57 px snout to tail tip).
        n_encounters: scripted encounters over the video (each a crossing or a near contact).
        near_contact_fraction: share of the encounters that are near contacts rather than crossings.
        appearance: "identical" animals, or "distinct" colours per animal.
        noise_std: Gaussian pixel noise (0-255 units).
        seed: seeds everything random.
    """

    n_animals: int = 3
    n_frames: int = 900
    width: int = 320
    height: int = 320
    fps: float = 30.0
    body_scale: float = 1.2
    n_encounters: int = 24
    near_contact_fraction: float = 0.25
    appearance: Appearance = "identical"
    noise_std: float = 4.0
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if not 2 <= self.n_animals <= 4:
            problems.append(f"n_animals ({self.n_animals}) must be 2 to 4")
        if self.width < 64 or self.height < 64 or self.width % 2 or self.height % 2:
            problems.append(f"width x height ({self.width} x {self.height}) must be even and at least 64 each")
        if self.n_encounters < 1 or self.n_frames < 8 * self.n_encounters:
            problems.append(f"n_frames ({self.n_frames}) must give each of n_encounters ({self.n_encounters}) 8 frames")
        if self.body_scale <= 0 or self.fps <= 0 or self.noise_std < 0:
            problems.append("body_scale and fps must be positive, noise_std non-negative")
        if 2 * (CENTRE_MARGIN + BODY_LENGTH) * self.body_scale > min(self.width, self.height):
            problems.append(f"animals of body_scale {self.body_scale} do not fit a {self.width}x{self.height} frame")
        if not 0 <= self.near_contact_fraction <= 1 or self.appearance not in ("identical", "distinct"):
            problems.append("near_contact_fraction must be in [0, 1] and appearance 'identical' or 'distinct'")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def track_names(self) -> tuple[str, ...]:
        """The animals' identities: animal0, animal1, ..."""
        return tuple(f"animal{a}" for a in range(self.n_animals))


@dataclass(frozen=True, eq=False)
class SocialScene:
    """A social video's ground truth and what is needed to draw it.

    Attributes:
        config: what it was made with.
        motions: one `Motion` per animal (A).
        points: float64 (T, A, P, 2) (x, y) of every named body point (`animal.POINTS`).
        depth: int (T, A) drawing order of each animal in each frame (0 drawn first, at the bottom).
        palettes: each animal's colours (A).
        background: float32 (H, W, 3) RGB, the empty arena.
        seed: seeds the pixel noise.
    """

    config: SocialConfig
    motions: tuple[Motion, ...]
    points: np.ndarray
    depth: np.ndarray
    palettes: tuple[Palette, ...]
    background: np.ndarray
    seed: int

    @property
    def keypoints(self) -> np.ndarray:
        """float64 (T, A, K, 2) (x, y) of the labeled keypoints, animals in identity order."""
        return self.points[:, :, KEYPOINT_INDEX]

    @property
    def visible(self) -> np.ndarray:
        """Visibility, bool (T, A, K): False where an animal drawn above covers the keypoint (distance < 0)."""
        keypoints = self.keypoints
        n_frames, n_animals = keypoints.shape[:2]
        visible = np.ones(keypoints.shape[:3], dtype=bool)
        scale = self.motions[0].scale
        for t in range(n_frames):
            for a, b in itertools.permutations(range(n_animals), 2):
                if self.depth[t, b] > self.depth[t, a]:  # b is drawn over a
                    visible[t, a] &= animal_distance(self.points[t, b], scale, keypoints[t, a]) >= 0
        return visible

    def frames(self) -> Iterator[np.ndarray]:
        """Render the frames in order: uint8 (H, W, 3) RGB each, T of them."""
        rng = np.random.default_rng(self.seed)
        scale = self.motions[0].scale
        for t in range(len(self.points)):
            image = self.background.copy()
            for a in np.argsort(self.depth[t], kind="stable"):
                draw_animal(image, self.points[t, a], scale, palette=self.palettes[a])
            yield finish(image, self.config.noise_std, rng)

    def encounters(self, distance: float | None = None) -> list[tuple[int, int, int]]:
        """Times two animals came close: (frame of closest approach, animal a, animal b), a < b, in time order.

        An encounter is a run of frames in which the two mid-bodies are nearer than `distance`
        (default: half a body length), counted once at its closest frame.
        """
        limit = 0.5 * BODY_LENGTH * self.motions[0].scale if distance is None else distance
        mid = np.stack([np.stack([m.x, m.y], axis=-1) for m in self.motions], axis=1)  # (T, A, 2)
        found = []
        for a, b in itertools.combinations(range(mid.shape[1]), 2):
            gap = np.linalg.norm(mid[:, a] - mid[:, b], axis=-1)  # (T,)
            close = np.concatenate([[0], (gap < limit).astype(np.int8), [0]])
            starts, stops = np.flatnonzero(np.diff(close) == 1), np.flatnonzero(np.diff(close) == -1)
            found += [(int(s + np.argmin(gap[s:e])), a, b) for s, e in zip(starts, stops, strict=True)]
        return sorted(found)


def make_social_scene(config: SocialConfig, rng: np.random.Generator | None = None) -> SocialScene:
    """A new social scene: scripted paths, postures, depth order, colours and background.

    Args:
        config: what to make.
        rng: the random source; default one seeded with `config.seed`.
    """
    rng = rng if rng is not None else np.random.default_rng(config.seed)
    background = make_background(config.height, config.width, rng)
    centres, depth = script_paths(config, rng)  # (A, T, 2), (T, A)
    motions = tuple(_posture(centres[a], config, rng) for a in range(config.n_animals))
    points = np.stack([body_points(m) for m in motions], axis=1)  # (T, A, P, 2)
    tints = TINTS if config.appearance == "distinct" else ((1.0, 1.0, 1.0),) * len(TINTS)
    palettes = tuple(DEFAULT_PALETTE.tinted(tints[a]) for a in range(config.n_animals))
    return SocialScene(config, motions, points, depth, palettes, background, int(rng.integers(2**63)))


def script_paths(config: SocialConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The animals' mid-body paths and depth order, episode by episode.

    Episode e (of `n_encounters`, equal lengths) belongs to a pair of animals (pairs taken in
    turn): both walk straight to a meeting point between them, reach it in the episode's middle
    frame and walk on in the same direction at the same speed; in a near contact the second
    animal aims a body width to the side. The others walk to random points at least a body
    length from the meeting point. The pair's depth order is drawn anew each episode. Paths
    are piecewise straight, then smoothed over a few frames to round the corners.

    Returns:
        centres float64 (A, T, 2) (x, y) of each mid-body, depth int (T, A).
    """
    a_count, t_count, scale = config.n_animals, config.n_frames, config.body_scale
    low = np.full(2, CENTRE_MARGIN * scale)
    high = np.array([config.width - 1, config.height - 1]) - CENTRE_MARGIN * scale
    body = BODY_LENGTH * scale
    waypoints: list[list[tuple[int, np.ndarray]]] = []  # per animal: (frame, position)
    start = [low + (high - low) * (0.5 + 0.35 * np.array([np.cos(phi), np.sin(phi)])) for phi in
             2 * np.pi * (np.arange(a_count) / a_count + rng.uniform(0, 1))]  # fmt: skip
    waypoints = [[(0, p)] for p in start]
    depth = np.zeros((t_count, a_count), dtype=np.int64)
    order = np.arange(a_count)
    pairs = list(itertools.combinations(range(a_count), 2))
    pair_order = rng.permutation(len(pairs))
    edges = np.linspace(0, t_count - 1, config.n_encounters + 1).round().astype(int)
    for e in range(config.n_encounters):
        first, last = int(edges[e]), int(edges[e + 1])
        middle = (first + last) // 2
        a, b = pairs[pair_order[e % len(pairs)]]
        pa, pb = waypoints[a][-1][1], waypoints[b][-1][1]
        apart = pb - pa
        normal = np.array([-apart[1], apart[0]]) / max(np.linalg.norm(apart), 1e-9)
        meet = np.clip((pa + pb) / 2 + normal * rng.uniform(-0.4, 0.4) * np.linalg.norm(apart), low, high)
        near = rng.random() < config.near_contact_fraction
        for animal, here, aim in ((a, pa, meet), (b, pb, meet + (normal * 0.45 * body if near else 0.0))):
            aim = np.clip(aim, low, high)
            ahead = aim - here
            if np.linalg.norm(ahead) < 1e-6:
                ahead = rng.normal(size=2)
            step = ahead / (middle - first)  # pixels per frame on the way in, kept on the way out
            exit_point = _inside(aim, step * (last - middle), low, high)
            waypoints[animal] += [(middle, aim), (last, exit_point)]
        for other in set(range(a_count)) - {a, b}:
            target = _away_from(meet, body, low, high, rng)
            waypoints[other].append((last, target))
        if rng.random() < 0.5:
            order[[a, b]] = order[[b, a]]
        depth[first : last + 1] = order
    centres = np.stack([_interpolate(points, t_count) for points in waypoints])  # (A, T, 2)
    return _smooth(centres, sigma=2.0), depth


def _inside(origin: np.ndarray, step: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """The point `origin + step`, shortened along `step` so that it stays within [low, high]."""
    fraction = 1.0
    for axis in range(2):
        if step[axis] > 0:
            fraction = min(fraction, (high[axis] - origin[axis]) / step[axis])
        elif step[axis] < 0:
            fraction = min(fraction, (low[axis] - origin[axis]) / step[axis])
    return origin + max(fraction, 0.0) * step


def _away_from(point: np.ndarray, distance: float, low: np.ndarray, high: np.ndarray, rng) -> np.ndarray:
    """A random position in [low, high] at least `distance` from `point` (the farthest of a few draws)."""
    draws = low + (high - low) * rng.random((8, 2))
    far = np.linalg.norm(draws - point, axis=1)
    good = np.flatnonzero(far >= distance)
    return draws[good[0]] if len(good) else draws[int(np.argmax(far))]


def _interpolate(waypoints: list[tuple[int, np.ndarray]], n_frames: int) -> np.ndarray:
    """Positions (T, 2) at every frame, linear between (frame, position) waypoints, held after the last."""
    frames = np.array([f for f, _ in waypoints], dtype=float)
    xy = np.stack([p for _, p in waypoints])  # (W, 2)
    t = np.arange(n_frames, dtype=float)
    return np.stack([np.interp(t, frames, xy[:, 0]), np.interp(t, frames, xy[:, 1])], axis=-1)


def _smooth(paths: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of (A, T, 2) paths along time, the ends held (edge padding)."""
    half = int(np.ceil(3 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(paths, ((0, 0), (half, half), (0, 0)), mode="edge")
    out = np.empty_like(paths)
    for a in range(paths.shape[0]):
        for c in range(2):
            out[a, :, c] = np.convolve(padded[a, :, c], kernel, mode="valid")
    return out


def _posture(centre: np.ndarray, config: SocialConfig, rng: np.random.Generator) -> Motion:
    """The animal's posture along a mid-body path (T, 2): heading from its velocity, bend from its turning."""
    n = len(centre)
    velocity = np.gradient(centre, axis=0)  # (T, 2) px per frame
    speed = np.linalg.norm(velocity, axis=-1)
    heading = np.arctan2(velocity[:, 1], velocity[:, 0])
    for t in range(1, n):  # standing still: keep facing the same way
        if speed[t] < 0.05:
            heading[t] = heading[t - 1]
    heading = np.unwrap(heading)
    turn = np.gradient(heading) * config.fps  # rad/s

    def track(std: float, seconds: float) -> np.ndarray:
        return std * smooth_noise(rng, n, max(seconds * config.fps, 1.0))

    bend = np.clip(0.12 * turn + track(0.1, 0.4), -0.5, 0.5)
    tail = np.stack([track(0.25, 0.3) for _ in range(N_TAIL_SEGMENTS)], axis=1)  # (T, N_TAIL_SEGMENTS)
    wrapped = (heading + np.pi) % (2 * np.pi) - np.pi
    return Motion(centre[:, 0], centre[:, 1], wrapped, bend, track(0.2, 0.25), tail, config.body_scale)
