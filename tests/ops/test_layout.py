import numpy as np
import pytest
import torch

from posecore.ops import layout
from posecore.ops.layout import offset_ranges, peaks_in_layout
from posecore.ops.peaks import find_peaks

# A mirror rig in a 40 x 60 map (cells): one paw seen from the side (keypoint 0) and from below
# (keypoint 1), the other paw from below (keypoint 2). The side view's x equals the bottom view's
# x give or take a cell; the second paw lies 8 to 12 cells below the first in the bottom view.
PAWS = torch.tensor([[20.3, 8.6], [20.8, 28.2], [31.4, 38.1]], dtype=torch.float64)  # (x, y)
RANGES = ((0, 1, -1.0, 1.0, -21.0, -19.0), (1, 2, -12.0, -8.0, -12.0, -8.0))  # in map cells (stride 1)


def _labels(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 3, 2) labels that keep RANGES, the rig moving as a whole."""
    base = rng.uniform(10, 30, size=(n, 1, 2))
    offsets = np.stack(
        [np.zeros((n, 2)), rng.uniform([-1, 19], [1, 21], size=(n, 2)), rng.uniform(8, 12, size=(n, 2))], axis=1
    )
    offsets[:, 2] += offsets[:, 1]
    return base + offsets


def test_offset_ranges_are_the_labels_offsets_widened_for_the_frames_that_showed_them():
    rng = np.random.default_rng(0)
    labels = _labels(30, rng)
    labels[:25, 2] = np.nan  # keypoint 2 is labeled in 5 frames only: too few for a range
    labels[3, 0, 1] = np.nan  # a half-labeled point is not labeled
    rows = offset_ranges(labels)
    assert [row[:2] for row in rows] == [(0, 1)]
    both = np.isfinite(labels[:, [0, 1]]).all(axis=(1, 2))
    dx = labels[both, 0, 0] - labels[both, 1, 0]
    dy = labels[both, 0, 1] - labels[both, 1, 1]
    wx, wy = (dx.max() - dx.min()) * layout.WIDEN / both.sum(), (dy.max() - dy.min()) * layout.WIDEN / both.sum()
    assert rows[0][2:] == pytest.approx((dx.min() - wx, dx.max() + wx, dy.min() - wy, dy.max() + wy))
    assert all(isinstance(v, float) for v in rows[0][2:])
    assert offset_ranges(labels[: layout.MIN_FRAMES - 1]) == ()  # the prior stays off


@pytest.fixture
def rig(make_gaussians):
    """(1, 3, 40, 60) maps of the rig, with the bottom paw maps swapped: each one's highest peak on the other paw."""
    maps = make_gaussians(PAWS, 40, 60, 1.5).view(1, 3, 40, 60)
    swapped = maps.clone()
    swapped[0, 1] = torch.maximum(0.7 * maps[0, 1], maps[0, 2])
    swapped[0, 2] = torch.maximum(0.7 * maps[0, 2], maps[0, 1])
    return swapped


def test_peaks_that_break_the_labels_ranges_move_to_their_maps_maxima_that_keep_them(rig):
    peaks = find_peaks(rig)
    assert torch.allclose(peaks[0, 1, :2].double(), PAWS[2], atol=1e-3)  # the bottom paws are swapped
    out = peaks_in_layout(rig, peaks, RANGES, stride=1.0)
    torch.testing.assert_close(out[0, :, :2].double(), PAWS, atol=1e-3, rtol=0)
    x, y = out[0, 1, :2].round().long().tolist()
    assert out[0, 1, 2].item() == rig[0, 1, y, x].item()  # the score of the maximum it moved to
    # Ranges in image pixels are divided by the stride: the same ranges at stride 4 fit these map cells.
    scaled = tuple((i, j, *(4 * v for v in limits)) for i, j, *limits in RANGES)
    torch.testing.assert_close(peaks_in_layout(rig, peaks, scaled, stride=4.0), out)


def test_frames_that_keep_the_ranges_and_models_without_ranges_are_left_alone(rig, make_gaussians):
    right = make_gaussians(PAWS, 40, 60, 1.5).view(1, 3, 40, 60)
    maps = torch.cat([right, rig])
    peaks = find_peaks(maps)
    out = peaks_in_layout(maps, peaks, RANGES, stride=1.0)
    torch.testing.assert_close(out[0], peaks[0])
    assert peaks_in_layout(maps, peaks, (), stride=1.0) is peaks


def test_a_confident_peak_that_breaks_one_range_stays_when_the_alternative_is_weak(make_gaussians):
    # Keypoint 1 peaks at 1.0 four cells below where the ranges allow, and at 0.3 where they do:
    # one broken range costs layout.WEIGHT (0.5) of score, less than the 0.7 that moving would lose.
    far = PAWS.clone()
    far[1, 1] += 4.0
    maps = make_gaussians(far, 40, 60, 1.5).view(1, 3, 40, 60)
    weak = make_gaussians(PAWS[1:2], 40, 60, 1.5).view(40, 60)
    maps[0, 1] = torch.maximum(maps[0, 1], 0.3 * weak)
    peaks = find_peaks(maps)
    torch.testing.assert_close(peaks_in_layout(maps, peaks, RANGES[:1], stride=1.0), peaks)
    # Two broken ranges (keypoint 1 is tied to keypoint 2 too) cost more than the move loses.
    moved = peaks_in_layout(maps, peaks, RANGES, stride=1.0)
    torch.testing.assert_close(moved[0, 1, :2].double(), PAWS[1], atol=1e-3, rtol=0)
    torch.testing.assert_close(moved[0, [0, 2]], peaks[0, [0, 2]])


def test_a_peak_without_a_score_does_not_stop_the_others_moving(rig):
    peaks = find_peaks(rig)
    peaks[0, 0, 2] = torch.nan  # keypoint 0's maxima would gain NaN: they count as gaining their score
    out = peaks_in_layout(rig, peaks, RANGES, stride=1.0)
    torch.testing.assert_close(out[0, :, :2].double(), PAWS, atol=1e-3, rtol=0)


def test_a_map_without_a_peak_breaks_no_range(rig):
    maps = rig.clone()
    maps[0, 2] = 0.0  # nothing above the threshold: find_peaks_multi has no candidate for it
    peaks = find_peaks(maps)
    peaks[0, 2] = torch.nan
    out = peaks_in_layout(maps, peaks, RANGES, stride=1.0)
    assert out[0, 2].isnan().all()
    torch.testing.assert_close(out[0, :2, :2].double(), PAWS[:2], atol=1e-3, rtol=0)


def test_two_keypoints_that_took_each_others_places_move_together(make_gaussians):
    # Two bottom-view paws, each map highest (1.0) on the other paw and 0.85 on its own: only
    # their own range is broken, and moving either paw alone leaves it broken (both on one paw).
    # Moving both mends it (+0.5) for 2 x 0.15 of score.
    maps = make_gaussians(PAWS[1:], 40, 60, 1.5).view(1, 2, 40, 60)
    maps = torch.maximum(0.85 * maps, maps.flip(1))
    ranges = ((0, 1, -12.0, -8.0, -12.0, -8.0),)
    peaks = find_peaks(maps)
    assert torch.allclose(peaks[0, :, :2].double(), PAWS[[2, 1]], atol=1e-3)
    out = peaks_in_layout(maps, peaks, ranges, stride=1.0)
    torch.testing.assert_close(out[0, :, :2].double(), PAWS[1:], atol=1e-3, rtol=0)
