"""The synthetic animal: its body plan, its keypoints and how it moves.

The body is a chain of spine points seen from above: snout, neck, mid-body, tail base and a
tail of `N_TAIL_SEGMENTS` segments, plus two ears and two eyes beside the head. Everything is
in image pixels, x the column and y the row, the centre of the top-left pixel at (0, 0); angles
are in radians in that frame (0 points along +x, pi/2 along +y, i.e. down the image). The
animal's left is its left as seen from above: facing +x, its left ear is at smaller y.

Motion is a set of smooth random signals (speed, turning rate, body bend, head yaw and a tail
wag per segment: white noise blurred in time), so the path is smooth; the animal turns away from the walls and is
pushed back inside the frame whenever a part of it would leave it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KEYPOINTS: tuple[str, ...] = ("snout", "left_ear", "right_ear", "neck", "tailbase", "tailtip")
"""The labeled keypoints, in dataset order."""

SKELETON: tuple[tuple[str, str], ...] = (
    ("snout", "left_ear"),
    ("snout", "right_ear"),
    ("left_ear", "neck"),
    ("right_ear", "neck"),
    ("neck", "tailbase"),
    ("tailbase", "tailtip"),
)
"""Edges of the posture graph, as keypoint name pairs."""

SWAP_PAIRS: tuple[tuple[str, str], ...] = (("left_ear", "right_ear"),)
"""Keypoints that trade names when the image is mirrored."""

N_TAIL_SEGMENTS = 4
TAIL_POINTS: tuple[str, ...] = (*(f"tail{i}" for i in range(1, N_TAIL_SEGMENTS)), "tailtip")
POINTS: tuple[str, ...] = (
    *("snout", "neck", "mid", "tailbase", *TAIL_POINTS),
    *("left_ear", "right_ear", "left_eye", "right_eye"),
)
"""Every point the renderer draws from, keypoints included; `body_points` returns them in this order."""

KEYPOINT_INDEX = np.array([POINTS.index(name) for name in KEYPOINTS])
"""Where each of `KEYPOINTS` is in `POINTS`: `points[..., KEYPOINT_INDEX, :]` is (..., K, 2)."""

# Body plan in pixels for a 128-pixel-high frame (scaled with the frame): segment lengths along
# the spine and the half-widths the renderer uses. Snout to tail base is 31 px, the tail 26 px.
HEAD_LENGTH = 10.0
FRONT_LENGTH = 10.0
BACK_LENGTH = 11.0
TAIL_SEGMENT_LENGTH = 6.5
EAR_FORWARD, EAR_SIDE = 1.5, 5.2
EYE_FORWARD, EYE_SIDE = 5.5, 3.0
REACH = 8.0
"""Largest half-width of any part, which must stay inside the frame with its keypoint."""
LOOK_AHEAD = 30.0
"""How far ahead (body-plan pixels) the animal looks for walls."""
MAX_TURN = 4.0
"""Fastest turn, radians per second."""
STEER_TIME = 0.15
"""Seconds over which a turn away from a wall eases in or out."""


@dataclass(frozen=True)
class Motion:
    """The animal's posture over time; arrays of shape (T,) unless noted.

    Attributes:
        x: mid-body x (column) in pixels.
        y: mid-body y (row) in pixels.
        heading: direction from mid-body to neck, radians.
        bend: turn at each body joint (tail base, mid, neck), radians; positive turns toward +angle.
        head_yaw: extra turn of the head at the neck, radians.
        tail: (T, N_TAIL_SEGMENTS) extra turn at each tail joint, radians.
        scale: body size in pixels per body-plan pixel.
    """

    x: np.ndarray
    y: np.ndarray
    heading: np.ndarray
    bend: np.ndarray
    head_yaw: np.ndarray
    tail: np.ndarray
    scale: float

    @property
    def n_frames(self) -> int:
        """Number of frames T."""
        return len(self.x)


def body_scale(width: int, height: int) -> float:
    """Body size for a frame: 1.0 at 128 pixels on the short side, proportional otherwise."""
    return min(width, height) / 128.0


def _unit(angle: np.ndarray) -> np.ndarray:
    """(..., 2) unit vectors (x, y) pointing along `angle`."""
    return np.stack([np.cos(angle), np.sin(angle)], axis=-1)


def body_points(motion: Motion) -> np.ndarray:
    """Every named point of the body in every frame.

    Args:
        motion: the posture over T frames.

    Returns:
        float64 (T, len(POINTS), 2) with (x, y) in pixels, in the order of `POINTS`.
    """
    s = motion.scale
    mid = np.stack([motion.x, motion.y], axis=-1)  # (T, 2)
    front = motion.heading + motion.bend / 2  # direction mid -> neck
    head = front + motion.bend + motion.head_yaw  # direction neck -> snout
    back = motion.heading - motion.bend / 2  # direction tail base -> mid
    neck = mid + FRONT_LENGTH * s * _unit(front)
    snout = neck + HEAD_LENGTH * s * _unit(head)
    tailbase = mid - BACK_LENGTH * s * _unit(back)
    tail = [tailbase]
    angle = back - motion.bend
    for i in range(N_TAIL_SEGMENTS):
        angle = angle + motion.tail[:, i]
        tail.append(tail[-1] - TAIL_SEGMENT_LENGTH * s * _unit(angle))
    forward, left = _unit(head), _unit(head - np.pi / 2)  # facing +x, left is -y
    ears = [neck + s * (EAR_FORWARD * forward + side * EAR_SIDE * left) for side in (1, -1)]
    eyes = [neck + s * (EYE_FORWARD * forward + side * EYE_SIDE * left) for side in (1, -1)]
    points = [snout, neck, mid, *tail, *ears, *eyes]
    return np.stack(points, axis=1)  # (T, P, 2)


def smooth_noise(rng: np.random.Generator, n: int, width: float) -> np.ndarray:
    """A smooth random signal: white noise blurred by a Gaussian of `width` samples, unit std, (n,)."""
    half = int(np.ceil(3 * width))
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / width) ** 2)
    kernel /= np.sqrt((kernel**2).sum())  # unit variance out for unit variance in
    return np.convolve(rng.standard_normal(n + 2 * half), kernel, mode="valid")


def _wrap(angle: float) -> float:
    """An angle in [-pi, pi)."""
    return (angle + np.pi) % (2 * np.pi) - np.pi


def simulate(n_frames: int, width: int, height: int, fps: float, rng: np.random.Generator) -> Motion:
    """A smooth random walk of the animal inside a width x height frame.

    Speed (mean 0.2 frame heights per second, at times near a stop), turning rate, bend, head
    yaw and tail wag are each smooth random signals that change over a fraction of a second of
    real time (so the motion looks the same at any fps). When a wall is ahead the animal turns
    to the side where there is more room; if any point would still come within `REACH` pixels
    of the border the whole animal is shifted back inside.

    Args:
        n_frames: number of frames T.
        width: frame width in pixels.
        height: frame height in pixels.
        fps: frames per second.
        rng: the random source (seeded by the caller).

    Returns:
        The posture in every frame; every point of `body_points` lies at least `REACH * scale`
        pixels inside the frame.
    """
    s = body_scale(width, height)
    dt = 1.0 / fps
    pad = REACH * s

    def track(std: float, seconds: float) -> np.ndarray:  # (T,) smooth, changing over `seconds`
        return std * smooth_noise(rng, n_frames, max(seconds * fps, 1.0))

    speed = np.maximum(s * (25.0 + track(20.0, 0.5)), 0.0)  # px/s, now and then a stop
    wander = track(1.2, 0.3)  # rad/s, turning of its own accord
    bend_noise, yaw = track(0.15, 0.4), track(0.25, 0.25)
    wag = np.stack([track(0.25, 0.3) for _ in range(N_TAIL_SEGMENTS)], axis=1)  # (T, N_TAIL_SEGMENTS)
    x, y = rng.uniform(0.4, 0.6) * (width - 1), rng.uniform(0.4, 0.6) * (height - 1)
    heading = rng.uniform(-np.pi, np.pi)
    out = np.zeros((n_frames, 5 + N_TAIL_SEGMENTS))
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    inner_low, inner_high = np.full(2, 2 * pad), np.array([width - 1, height - 1]) - 2 * pad

    def crowding(x: float, y: float, heading: float) -> float:
        """How far a point one body length ahead is past the margin, in units of 10 px (0 to 1)."""
        ahead = np.array([x, y]) + LOOK_AHEAD * s * np.array([np.cos(heading), np.sin(heading)])
        return min(max(0.0, *(inner_low - ahead), *(ahead - inner_high)) / (10.0 * s), 1.0)

    side, steer = 0.0, 0.0
    for t in range(n_frames):
        # A wall ahead: turn toward the side where a point ahead is less crowded (ties: the
        # centre), keeping that side until the way is clear; the turn eases in over STEER_TIME.
        wall = crowding(x, y, heading)
        if wall == 0:
            side = 0.0
        elif side == 0:
            side = np.sign(crowding(x, y, heading - 0.5) - crowding(x, y, heading + 0.5))
            side = side or np.sign(_wrap(np.arctan2(centre[1] - y, centre[0] - x) - heading)) or 1.0
        steer += (MAX_TURN * wall * side - steer) * min(dt / STEER_TIME, 1.0)
        turn = float(np.clip(wander[t] + steer, -MAX_TURN, MAX_TURN))
        heading = _wrap(heading + turn * dt)
        bend = float(np.clip(0.12 * turn + bend_noise[t], -0.5, 0.5))
        x += speed[t] * dt * np.cos(heading)
        y += speed[t] * dt * np.sin(heading)
        # Push the animal back inside: shift by how far its outermost points are past the margin.
        state = np.array([x, y, heading, bend, yaw[t], *wag[t]])
        points = body_points(_motion(state[None], s))[0]  # (P, 2)
        low, high = points.min(axis=0), points.max(axis=0)
        limit = np.array([width - 1, height - 1]) - pad
        shift = np.maximum(pad - low, 0.0) + np.minimum(limit - high, 0.0)
        x, y = x + shift[0], y + shift[1]
        out[t] = [x, y, heading, bend, yaw[t], *wag[t]]
    return _motion(out, s)


def _motion(states: np.ndarray, scale: float) -> Motion:
    """A `Motion` from (T, 5 + N_TAIL_SEGMENTS) rows of (x, y, heading, bend, head_yaw, tail...)."""
    return Motion(
        x=states[:, 0],
        y=states[:, 1],
        heading=states[:, 2],
        bend=states[:, 3],
        head_yaw=states[:, 4],
        tail=states[:, 5:],
        scale=scale,
    )


def keypoints(motion: Motion) -> np.ndarray:
    """The labeled keypoints: float64 (T, K, 2) with (x, y) in pixels, K in the order of `KEYPOINTS`."""
    return body_points(motion)[:, KEYPOINT_INDEX]
