import numpy as np
import pytest
import torch

from posecore.ops.peaks import find_peaks
from posecore.ops.single_animal import label_extent, peaks_on_the_animal

# One animal of four keypoints near (20, 15) in a 40 x 60 map, as (x, y) in map cells.
ANIMAL = torch.tensor([[18.3, 14.6], [21.7, 13.2], [22.4, 16.8], [17.1, 17.5]], dtype=torch.float64)


@pytest.fixture
def maps(make_gaussians):
    """(2, 4, 40, 60): frame 0 the animal alone; frame 1 the same with a higher decoy for keypoint 2 in a corner."""
    animal = make_gaussians(ANIMAL, 40, 60, 1.5).view(1, 4, 40, 60)
    decoy = make_gaussians(torch.tensor([[56.2, 37.4]], dtype=torch.float64), 40, 60, 1.5)[0, 0]
    second = animal.clone()
    second[0, 2] = torch.maximum(0.9 * animal[0, 2], decoy)  # the true peak 0.9, the corner 1.0
    return torch.cat([animal, second])


def test_a_peak_off_the_animal_moves_to_its_maps_maximum_on_the_animal(maps):
    peaks = find_peaks(maps)
    assert peaks[1, 2, 0] > 50  # the global maximum is the decoy in the corner
    out = peaks_on_the_animal(maps, peaks, reach=12.0)
    torch.testing.assert_close(out[..., :2].double(), ANIMAL.expand(2, 4, 2), atol=1e-3, rtol=0)
    assert out[1, 2, 2].item() == pytest.approx(0.9 * peaks[0, 2, 2].item(), rel=1e-6)  # its own score
    torch.testing.assert_close(out[0], peaks[0])  # the frame without a decoy is untouched
    torch.testing.assert_close(out[1, [0, 1, 3]], peaks[1, [0, 1, 3]])


def test_the_animal_is_where_the_maps_agree_not_where_most_peaks_are(make_gaussians):
    # Three head maps peak (0.7) in a far corner and (0.6) on the animal; the tail map (1.0) only on the animal.
    animal = make_gaussians(ANIMAL, 40, 60, 1.5).view(4, 40, 60)
    corner = make_gaussians(torch.tensor([[55.0, 36.0], [57.0, 35.0], [56.0, 38.0]], dtype=torch.float64), 40, 60, 1.5)
    maps = animal.clone()
    maps[:3] = torch.maximum(0.6 * animal[:3], 0.7 * corner[:, 0])
    maps = maps.unsqueeze(0)  # (1, 4, 40, 60)
    peaks = find_peaks(maps)
    assert (peaks[0, :3, 0] > 50).all() and peaks[0, 3, 0] < 25  # three in the corner, the tail on the animal
    out = peaks_on_the_animal(maps, peaks, reach=12.0)  # support: 0.6 x 3 + 1.0 on the animal, 0.7 x 3 in the corner
    torch.testing.assert_close(out[0, :, :2].double(), ANIMAL, atol=1e-3, rtol=0)


def test_the_prior_is_off_without_a_reach_or_with_fewer_than_three_keypoints(maps):
    peaks = find_peaks(maps)
    torch.testing.assert_close(peaks_on_the_animal(maps, peaks, reach=0.0), peaks)
    two = maps[:, 1:3]
    torch.testing.assert_close(peaks_on_the_animal(two, find_peaks(two), reach=12.0), find_peaks(two))


def test_a_far_peak_stays_when_its_map_has_nothing_on_the_animal(maps):
    maps = maps.clone()
    maps[1, 2] = torch.where(maps[1, 2] > 0.95, maps[1, 2], 0.0)  # only the decoy's top cells left
    peaks = find_peaks(maps)
    out = peaks_on_the_animal(maps, peaks, reach=12.0)
    torch.testing.assert_close(out, peaks)


def test_a_reach_wider_than_the_frame_keeps_every_global_maximum(maps):
    peaks = find_peaks(maps)
    torch.testing.assert_close(peaks_on_the_animal(maps, peaks, reach=100.0), peaks)


def test_a_missing_peak_stays_missing(maps):
    maps = maps.clone()
    maps[1, 0] = torch.nan  # no peak for keypoint 0: NaN, and the animal is the other three
    peaks = find_peaks(maps)
    out = peaks_on_the_animal(maps, peaks, reach=12.0)
    assert out[1, 0].isnan().all()
    torch.testing.assert_close(out[1, 1:, :2].double(), ANIMAL[1:], atol=1e-3, rtol=0)


def test_label_extent_is_the_longest_distance_between_two_labels_of_one_frame():
    labels = np.array(
        [
            [[0, 0], [3, 4], [np.nan, np.nan]],  # 5
            [[10, 10], [10, 13], [10, 17]],  # 7
            [[0, 0], [np.nan, np.nan], [np.nan, np.nan]],  # one label: no distance
        ],
        dtype=np.float32,
    )
    assert label_extent(labels) == pytest.approx(7.0)
    assert label_extent(labels[2:]) == 0.0
