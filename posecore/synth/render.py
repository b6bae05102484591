"""Drawing the synthetic animal with numpy: soft-edged shapes over a textured background.

Every shape is a signed distance field evaluated at pixel centres (x the column, y the row,
the centre of the top-left pixel at (0, 0)). A pixel's coverage is that of an edge blurred by a
Gaussian of `EDGE_SIGMA` pixels, like a camera's optics: `Phi(-distance / sigma)`, with the
logistic approximation `Phi(x) ~ 0.5 + 0.5 tanh(0.851 x)`. Moving a shape by a fraction of a
pixel therefore moves the image's intensity centroid by as much (to about 0.02 px).
Layers are composited back to front: background, tail, body (head, front and back as one
shape, lighter along the spine), ears, eyes, nose, then the occluder.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from posecore.synth.animal import POINTS, TAIL_POINTS

_P = {name: i for i, name in enumerate(POINTS)}

# Half-widths in body-plan pixels (see animal.py), from the front of each segment to its back.
BODY_RADII = (1.8, 5.2, 7.2, 3.4)  # at the snout, neck, mid-body and tail base
TAIL_RADII = (2.0, 0.9)  # at the tail base and at the tip
EAR_RADIUS, EYE_RADIUS, NOSE_RADIUS = 2.7, 1.1, 1.6
OCCLUDER_RADIUS = 7.0
EDGE_SIGMA = 0.5
"""Blur of every edge, in pixels (std of a Gaussian)."""

# Colours (RGB, 0-255).
BODY_EDGE = np.array([52.0, 44.0, 40.0])
BODY_SPINE = np.array([112.0, 96.0, 84.0])
TAIL = np.array([122.0, 92.0, 86.0])
EAR = np.array([226.0, 156.0, 160.0])
EYE = np.array([12.0, 10.0, 10.0])
NOSE = np.array([236.0, 120.0, 130.0])
OCCLUDER = np.array([96.0, 112.0, 128.0])


@dataclass(frozen=True)
class Palette:
    """An animal's colours (RGB, 0-255): animals of a social scene may look different."""

    body_edge: np.ndarray = field(default_factory=lambda: BODY_EDGE)
    body_spine: np.ndarray = field(default_factory=lambda: BODY_SPINE)
    tail: np.ndarray = field(default_factory=lambda: TAIL)
    ear: np.ndarray = field(default_factory=lambda: EAR)

    def tinted(self, gain: tuple[float, float, float]) -> Palette:
        """The same palette with every colour scaled per channel by `gain` (clipped to 0-255)."""
        factor = np.asarray(gain, dtype=float)
        return Palette(*(np.clip(getattr(self, name) * factor, 0.0, 255.0) for name in PALETTE_FIELDS))


PALETTE_FIELDS = ("body_edge", "body_spine", "tail", "ear")
DEFAULT_PALETTE = Palette()


@dataclass(frozen=True)
class Occluder:
    """An opaque disk drawn over the animal.

    Attributes:
        x: centre x (column) in pixels.
        y: centre y (row) in pixels.
        radius: radius in pixels.
    """

    x: float
    y: float
    radius: float

    def covers(self, points: np.ndarray) -> np.ndarray:
        """Whether each of `points` (..., 2) (x, y) lies under the disk: bool (...)."""
        return np.hypot(points[..., 0] - self.x, points[..., 1] - self.y) < self.radius


def _smooth_noise(rng: np.random.Generator, height: int, width: int, sigma: float) -> np.ndarray:
    """White noise low-passed by a Gaussian of `sigma` pixels, scaled to unit std: float (H, W)."""
    white = rng.standard_normal((height, width))
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    gain = np.exp(-2 * (np.pi * sigma) ** 2 * (fx**2 + fy**2))  # Fourier transform of the Gaussian
    smooth = np.fft.irfft2(np.fft.rfft2(white) * gain, s=(height, width))
    return smooth / (smooth.std() + 1e-12)


def make_background(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A light arena floor with smooth blotches at two scales, different for every `rng`.

    Returns:
        float32 (H, W, 3) RGB in 0-255.
    """
    base = np.array([178.0, 168.0, 148.0]) + rng.uniform(-12, 12, size=3)
    coarse = _smooth_noise(rng, height, width, sigma=min(height, width) / 10)
    fine = _smooth_noise(rng, height, width, sigma=1.5)
    tint = rng.uniform(0.8, 1.2, size=3)  # blotches a little coloured
    texture = 14.0 * coarse[..., None] * tint + 5.0 * fine[..., None]
    return (base + texture).clip(0, 255).astype(np.float32)


def _round_cone(px: np.ndarray, py: np.ndarray, a: np.ndarray, b: np.ndarray, ra: float, rb: float) -> np.ndarray:
    """Exact signed distance to the hull of a disk of radius ra at a and one of radius rb at b.

    Args:
        px: x of the pixel centres, any shape that broadcasts with `py`, e.g. (1, w).
        py: y of the pixel centres, e.g. (h, 1).
        a: (2,) (x, y) of the first centre.
        b: (2,) (x, y) of the second centre.
        ra: radius at a.
        rb: radius at b.

    Returns:
        (h, w) distance in pixels, negative inside.
    """
    ax, ay, bx, by = (float(v) for v in (*a, *b))  # Python floats keep the grid's float32
    bax, bay = bx - ax, by - ay
    l2 = max(bax * bax + bay * bay, 1e-12)
    rr = ra - rb
    a2 = l2 - rr * rr
    pax, pay = px - ax, py - ay
    y = pax * bax + pay * bay  # projection on the axis, times |b - a|
    z = y - l2
    x2 = (pax * l2 - bax * y) ** 2 + (pay * l2 - bay * y) ** 2
    y2, z2 = y * y * l2, z * z * l2
    k = np.sign(rr) * rr * rr * x2
    cap_b = np.sqrt(x2 + z2) / l2 - rb
    cap_a = np.sqrt(x2 + y2) / l2 - ra
    side = (np.sqrt(x2 * a2 / l2) + y * rr) / l2 - ra
    return np.where(np.sign(z) * a2 * z2 > k, cap_b, np.where(np.sign(y) * a2 * y2 < k, cap_a, side))


def _disk(px: np.ndarray, py: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """Signed distance (h, w) to a disk, negative inside; `px` (1, w) and `py` (h, 1) as in `_round_cone`."""
    return np.sqrt((px - float(centre[0])) ** 2 + (py - float(centre[1])) ** 2) - radius


def draw_animal(
    image: np.ndarray,
    points: np.ndarray,
    scale: float,
    occluder: Occluder | None = None,
    palette: Palette = DEFAULT_PALETTE,
) -> None:
    """Draw the animal (and an occluder over it) into `image`, in place.

    Each shape is evaluated only on the pixels near it, which keeps a frame to about a
    millisecond at 160 x 128.

    Args:
        image: float32 (H, W, 3) RGB in 0-255, the background; overwritten.
        points: (len(POINTS), 2) (x, y) of the body's named points in pixels (`animal.body_points`).
        scale: body size (`animal.body_scale`); radii are multiplied by it.
        occluder: a disk drawn on top, or None.
        palette: the animal's colours.
    """
    height, width = image.shape[:2]

    def box(centres: np.ndarray, radius: float) -> tuple[slice, slice, np.ndarray, np.ndarray] | None:
        """Rows, columns and pixel-centre grids (h, 1) and (1, w) of the pixels within reach of `centres`."""
        x0, y0 = np.floor(centres.min(axis=0) - radius - 3 * EDGE_SIGMA - 1).astype(int)
        x1, y1 = np.ceil(centres.max(axis=0) + radius + 3 * EDGE_SIGMA + 1).astype(int)
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1 + 1, width), min(y1 + 1, height)
        if x0 >= x1 or y0 >= y1:
            return None
        py = np.arange(y0, y1, dtype=np.float32)[:, None]
        px = np.arange(x0, x1, dtype=np.float32)[None, :]
        return slice(y0, y1), slice(x0, x1), px, py

    def paint(rows: slice, cols: slice, distance: np.ndarray, colour: np.ndarray) -> None:
        alpha = (0.5 - 0.5 * np.tanh(0.851 / EDGE_SIGMA * distance))[..., None]  # (h, w, 1) coverage
        window = image[rows, cols]
        image[rows, cols] = window + (colour - window) * alpha

    def union_of_cones(names: tuple[str, ...], radii: np.ndarray) -> tuple[slice, slice, np.ndarray] | None:
        """Signed distance to a chain of round cones through the points `names`, on their box."""
        where = box(points[[_P[n] for n in names]], float(radii.max()))
        if where is None:
            return None
        rows, cols, px, py = where
        distance = np.full((rows.stop - rows.start, cols.stop - cols.start), np.inf, dtype=np.float32)
        for i in range(len(names) - 1):
            a, b = points[_P[names[i]]], points[_P[names[i + 1]]]
            distance = np.minimum(distance, _round_cone(px, py, a, b, radii[i], radii[i + 1]))
        return rows, cols, distance

    tail_names = ("tailbase", *TAIL_POINTS)
    tail = union_of_cones(tail_names, np.linspace(*TAIL_RADII, len(tail_names)) * scale)
    if tail is not None:
        paint(*tail, palette.tail)
    body = union_of_cones(("snout", "neck", "mid", "tailbase"), np.array(BODY_RADII) * scale)
    if body is not None:
        rows, cols, distance = body
        spine = np.clip(-distance / (4.0 * scale), 0.0, 1.0)[..., None]  # 0 at the outline, 1 deep inside
        paint(rows, cols, distance, palette.body_edge + (palette.body_spine - palette.body_edge) * spine)
    disks = [(name, EAR_RADIUS, palette.ear) for name in ("left_ear", "right_ear")]
    disks += [(name, EYE_RADIUS, EYE) for name in ("left_eye", "right_eye")]
    disks += [("snout", NOSE_RADIUS, NOSE)]
    shapes = [(points[_P[name]], radius * scale, colour) for name, radius, colour in disks]
    if occluder is not None:
        shapes.append((np.array([occluder.x, occluder.y]), occluder.radius, OCCLUDER))
    for centre, radius, colour in shapes:
        where = box(centre[None], radius)
        if where is not None:
            rows, cols, px, py = where
            paint(rows, cols, _disk(px, py, centre, radius), colour)


def animal_distance(points: np.ndarray, scale: float, query: np.ndarray) -> np.ndarray:
    """Signed distance in pixels from `query` points to the drawn animal (negative: under it).

    The union of the shapes `draw_animal` paints (tail, body, ears, eyes, nose), so a point
    with a negative distance is at least half covered by the animal drawn over it.

    Args:
        points: (len(POINTS), 2) (x, y) of the animal's named points.
        scale: its body size.
        query: (M, 2) (x, y) points.

    Returns:
        float (M,) distances.
    """
    px, py = query[:, 0].astype(np.float64), query[:, 1].astype(np.float64)
    distance = np.full(len(query), np.inf)
    chains = (
        (("tailbase", *TAIL_POINTS), np.linspace(*TAIL_RADII, len(TAIL_POINTS) + 1)),
        (("snout", "neck", "mid", "tailbase"), np.array(BODY_RADII)),
    )
    for names, radii in chains:
        for i in range(len(names) - 1):
            a, b = points[_P[names[i]]], points[_P[names[i + 1]]]
            distance = np.minimum(distance, _round_cone(px, py, a, b, radii[i] * scale, radii[i + 1] * scale))
    for names, radius in ((("left_ear", "right_ear"), EAR_RADIUS), (("left_eye", "right_eye"), EYE_RADIUS)):
        for name in names:
            distance = np.minimum(distance, _disk(px, py, points[_P[name]], radius * scale))
    return np.minimum(distance, _disk(px, py, points[_P["snout"]], NOSE_RADIUS * scale))


def finish(image: np.ndarray, noise_std: float, rng: np.random.Generator) -> np.ndarray:
    """Add Gaussian pixel noise of `noise_std` (0-255 units) and round to uint8 (H, W, 3)."""
    noisy = image + noise_std * rng.standard_normal(image.shape, dtype=np.float32)
    return np.rint(noisy).clip(0, 255).astype(np.uint8)
