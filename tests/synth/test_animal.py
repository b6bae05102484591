import numpy as np
import pytest

from posecore.synth.animal import (
    KEYPOINTS,
    POINTS,
    REACH,
    SKELETON,
    SWAP_PAIRS,
    Motion,
    body_points,
    body_scale,
    keypoints,
    simulate,
)


def test_names_are_consistent():
    assert len(KEYPOINTS) >= 5 and len(set(KEYPOINTS)) == len(KEYPOINTS)
    for a, b in (*SKELETON, *SWAP_PAIRS):
        assert a in KEYPOINTS and b in KEYPOINTS


@pytest.mark.parametrize(("width", "height"), [(160, 128), (64, 96), (320, 64)])
def test_the_animal_stays_inside_the_frame_and_explores_it(width, height):
    motion = simulate(2000, width, height, 30.0, np.random.default_rng(1))
    points = body_points(motion)  # (T, P, 2)
    margin = REACH * body_scale(width, height) - 1e-9
    assert points[..., 0].min() >= margin and points[..., 0].max() <= width - 1 - margin
    assert points[..., 1].min() >= margin and points[..., 1].max() <= height - 1 - margin
    assert np.ptp(motion.x) > 0.4 * width and np.ptp(motion.y) > 0.4 * height


def test_motion_is_smooth_and_not_frozen():
    motion = simulate(600, 160, 128, 30.0, np.random.default_rng(2))
    steps = np.linalg.norm(np.diff(keypoints(motion), axis=0), axis=-1)  # (T - 1, K) pixels per frame
    assert steps.max() < 12.0 and np.percentile(steps, 99) < 5.0  # no jumps; the tail tip swings fastest
    assert np.median(steps[:, KEYPOINTS.index("snout")]) > 0.2  # it does move


def test_left_ear_is_on_the_animals_left_seen_from_above():
    points = keypoints(simulate(300, 160, 128, 30.0, np.random.default_rng(3)))  # (T, K, 2)
    snout, left, right, neck = (points[:, KEYPOINTS.index(n)] for n in ("snout", "left_ear", "right_ear", "neck"))
    forward = snout - neck

    def cross(v):  # z of forward x v; negative: v is counter-clockwise on screen (y down), the left
        return forward[:, 0] * v[:, 1] - forward[:, 1] * v[:, 0]

    assert (cross(left - neck) < 0).all() and (cross(right - neck) > 0).all()


def test_facing_right_puts_the_left_ear_up_and_the_snout_in_front():
    motion = Motion(*(np.array([v]) for v in (80.0, 64.0, 0.0, 0.0, 0.0)), tail=np.zeros((1, 4)), scale=1.0)
    points = dict(zip(POINTS, body_points(motion)[0], strict=True))
    assert points["left_ear"][1] < 64.0 < points["right_ear"][1]
    assert points["tailtip"][0] < points["tailbase"][0] < points["neck"][0] < points["snout"][0]
    np.testing.assert_allclose([p[1] for p in points.values() if p is not None][:8], 64.0)  # spine on y = 64
