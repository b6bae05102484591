import dataclasses
import itertools

import numpy as np
import pytest

from posecore.synth.animal import KEYPOINTS
from posecore.synth.render import animal_distance
from posecore.synth.social import BODY_LENGTH, SocialConfig, make_social_scene

SMALL = SocialConfig(n_frames=240, n_encounters=8, width=256, height=256, body_scale=1.0, seed=3)


@pytest.fixture(scope="module")
def scene():
    return make_social_scene(SMALL)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"n_animals": 5}, "n_animals"),
        ({"n_frames": 40}, "8 frames"),
        ({"body_scale": 3.0}, "do not fit"),
        ({"appearance": "spotted"}, "appearance"),
        ({"width": 63}, "even"),
    ],
)
def test_impossible_scenes_are_refused_naming_the_setting(change: dict, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        dataclasses.replace(SMALL, **change)


def test_the_same_config_makes_the_same_scene(scene) -> None:
    again = make_social_scene(SMALL)
    np.testing.assert_array_equal(again.points, scene.points)
    np.testing.assert_array_equal(again.depth, scene.depth)
    assert not np.array_equal(make_social_scene(dataclasses.replace(SMALL, seed=4)).points, scene.points)


def test_each_scripted_pair_meets_in_its_episode(scene) -> None:
    mid = np.stack([np.stack([m.x, m.y], axis=-1) for m in scene.motions])  # (A, T, 2)
    edges = np.linspace(0, SMALL.n_frames - 1, SMALL.n_encounters + 1).round().astype(int)
    body = BODY_LENGTH * SMALL.body_scale
    for e in range(SMALL.n_encounters):
        middle = (edges[e] + edges[e + 1]) // 2
        gaps = [np.linalg.norm(mid[a, middle] - mid[b, middle]) for a, b in itertools.combinations(range(3), 2)]
        assert min(gaps) < 0.5 * body  # some pair is within half a body length at the episode's middle
    encounters = scene.encounters()
    assert len(encounters) >= SMALL.n_encounters
    for frame, a, b in encounters:
        assert np.linalg.norm(mid[a, frame] - mid[b, frame]) < 0.5 * body


def test_every_keypoint_stays_in_the_frame(scene) -> None:
    keypoints = scene.keypoints  # (T, A, K, 2)
    assert keypoints.shape == (SMALL.n_frames, 3, len(KEYPOINTS), 2)
    assert keypoints[..., 0].min() >= 0 and keypoints[..., 0].max() <= SMALL.width - 1
    assert keypoints[..., 1].min() >= 0 and keypoints[..., 1].max() <= SMALL.height - 1


def test_a_keypoint_under_an_animal_drawn_above_is_hidden_and_drawn_over(scene) -> None:
    visible = scene.visible  # (T, A, K)
    hidden = np.argwhere(~visible)
    assert len(hidden) > 0 and visible.mean() > 0.8
    distinct = make_social_scene(dataclasses.replace(SMALL, appearance="distinct"))
    frames = list(itertools.islice(distinct.frames(), int(hidden[:, 0].max()) + 1))
    checked = 0
    for t, a, k in hidden:
        point = distinct.keypoints[t, a, k]
        reach = {b: animal_distance(distinct.points[t, b], SMALL.body_scale, point[None])[0] for b in range(3)}
        over = [b for b in range(3) if distinct.depth[t, b] > distinct.depth[t, a] and reach[b] < 0.5]
        above = max(over, key=lambda b: distinct.depth[t, b])  # the topmost animal that reaches the point
        if reach[above] > -3.0:
            continue  # its outline (dark, blended) is on the point: no clear colour
        x, y = np.rint(point).astype(int)
        pixel = frames[t][y, x].astype(float)
        # Closer to the colours of the animal on top than to the hidden animal's own.
        assert _colour_distance(pixel, distinct.palettes[above]) < _colour_distance(pixel, distinct.palettes[a])
        checked += 1
    assert checked > 0


def _colour_distance(pixel: np.ndarray, palette) -> float:
    """How far an RGB pixel is from an animal's colours: its body (edge to spine), tail and ears."""
    edge, spine = palette.body_edge, palette.body_spine
    t = np.clip(np.dot(pixel - edge, spine - edge) / np.dot(spine - edge, spine - edge), 0.0, 1.0)
    body = np.linalg.norm(pixel - (edge + t * (spine - edge)))
    return min(body, np.linalg.norm(pixel - palette.tail), np.linalg.norm(pixel - palette.ear))


def test_distinct_appearance_colours_each_animal() -> None:
    identical = make_social_scene(SMALL)
    distinct = make_social_scene(dataclasses.replace(SMALL, appearance="distinct"))
    assert all(np.array_equal(p.body_edge, identical.palettes[0].body_edge) for p in identical.palettes)
    edges = [tuple(p.body_edge) for p in distinct.palettes]
    assert len(set(edges)) == 3
    np.testing.assert_array_equal(distinct.points, identical.points)  # only the colours differ
