import numpy as np
import pytest

from posecore.synth.animal import POINTS, Motion, body_points
from posecore.synth.render import EAR, NOSE, OCCLUDER, Occluder, draw_animal, finish, make_background

WHITE = 255.0


def straight_animal(x: float, y: float, heading: float) -> np.ndarray:
    """(P, 2) points of an unbent animal with its mid-body at (x, y)."""
    motion = Motion(*(np.array([v]) for v in (x, y, heading, 0.0, 0.0)), tail=np.zeros((1, 4)), scale=1.0)
    return body_points(motion)[0]


def drawn(points: np.ndarray, occluder: Occluder | None = None) -> np.ndarray:
    """How much darker than a white floor each pixel is: float (H, W)."""
    image = np.full((128, 160, 3), WHITE, np.float32)
    draw_animal(image, points, 1.0, occluder)
    return np.abs(image - WHITE).sum(axis=-1)


def centroid(weight: np.ndarray) -> np.ndarray:
    """(x, y) weighted mean of the pixel centres: x the column, y the row."""
    rows, cols = np.indices(weight.shape)
    return np.array([(weight * cols).sum(), (weight * rows).sum()]) / weight.sum()


@pytest.mark.parametrize(("x", "y"), [(70.0, 60.3), (81.7, 64.5)])
def test_the_drawing_is_centred_on_the_spine_in_pixel_centre_coordinates(x, y):
    # Facing +x the animal is mirror-symmetric about the row y; facing +y about the column x.
    assert centroid(drawn(straight_animal(x, y, 0.0)))[1] == pytest.approx(y, abs=0.02)
    assert centroid(drawn(straight_animal(x, y, np.pi / 2)))[0] == pytest.approx(x, abs=0.02)


def test_a_subpixel_move_moves_the_drawing_by_as_much():
    before = centroid(drawn(straight_animal(70.0, 60.0, 0.4)))
    after = centroid(drawn(straight_animal(70.3, 59.85, 0.4)))
    np.testing.assert_allclose(after - before, [0.3, -0.15], atol=0.03)


def test_ears_are_drawn_at_their_points():
    points = straight_animal(80.0, 64.0, 1.0)
    image = np.full((128, 160, 3), WHITE, np.float32)
    draw_animal(image, points, 1.0)
    for name in ("left_ear", "right_ear"):
        col, row = np.rint(points[POINTS.index(name)]).astype(int)
        np.testing.assert_allclose(image[row, col], EAR, atol=1.0)


def test_the_occluder_hides_what_it_covers():
    points = straight_animal(80.0, 64.0, 0.0)
    snout = points[POINTS.index("snout")]
    occluder = Occluder(float(snout[0]), float(snout[1]), 7.0)
    assert occluder.covers(snout) and not occluder.covers(points[POINTS.index("tailtip")])
    image = np.full((128, 160, 3), WHITE, np.float32)
    draw_animal(image, points, 1.0)
    col, row = np.rint(snout).astype(int)
    np.testing.assert_allclose(image[row, col], NOSE, atol=1.0)
    draw_animal(image, points, 1.0, occluder)
    np.testing.assert_allclose(image[row, col], OCCLUDER, atol=1.0)


def test_the_background_is_textured_and_differs_per_seed():
    a, b = (make_background(128, 160, np.random.default_rng(seed)) for seed in (0, 1))
    assert a.shape == (128, 160, 3) and a.dtype == np.float32
    assert 5 < a.std() < 40 and a.min() >= 0 and a.max() <= 255
    assert np.abs(a - b).mean() > 5


def test_finish_adds_noise_of_the_asked_size():
    image = np.full((128, 160, 3), 100.0, np.float32)
    out = finish(image, 4.0, np.random.default_rng(0))
    assert out.dtype == np.uint8 and out.shape == image.shape
    assert out.astype(float).std() == pytest.approx(4.0, rel=0.05)
    assert np.array_equal(finish(image, 0.0, np.random.default_rng(0)), np.full(image.shape, 100, np.uint8))
