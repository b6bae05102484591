import numpy as np
import torch

from posecore.geometry import map_to_image
from posecore.ops import find_peaks
from posecore.train.targets import confidence_maps


def test_peak_decodes_back_to_the_keypoint_within_a_tenth_of_a_pixel():
    keypoints = torch.tensor([[[10.3, 20.8], [31.0, 5.25], [6.0, 40.9], [47.6, 33.1]]])  # (1, 4, 2)
    maps, mask = confidence_maps(keypoints, (12, 16), stride=4, sigma=2.0)
    assert maps.shape == (1, 4, 12, 16) and mask.all()
    decoded = map_to_image(find_peaks(maps)[..., :2], 4)
    assert torch.allclose(decoded, keypoints, atol=0.1)
    # The nearest cell centre is at most 2 px away in x and in y: exp(-8 / (2 * 2^2)) = exp(-1).
    assert (maps.amax(dim=(-2, -1)) >= np.exp(-1.0)).all() and (maps <= 1).all()


def test_gaussian_width_is_sigma_in_image_pixels():
    # Image (9.5, 9.5) is the centre of cell (2, 2) at stride 4; the next cell is 4 image pixels away.
    maps, _ = confidence_maps(torch.tensor([[[9.5, 9.5]]]), (6, 6), stride=4, sigma=3.0)
    assert np.isclose(float(maps[0, 0, 2, 2]), 1.0)
    assert np.isclose(float(maps[0, 0, 2, 3]), np.exp(-(4.0**2) / (2 * 3.0**2)), rtol=1e-5)
    assert np.isclose(float(maps[0, 0, 3, 3]), np.exp(-(2 * 4.0**2) / (2 * 3.0**2)), rtol=1e-5)


def test_unlabeled_keypoints_get_zero_maps_and_are_masked():
    keypoints = torch.tensor([[[10.0, 10.0], [float("nan"), float("nan")], [5.0, float("nan")]]])
    maps, mask = confidence_maps(keypoints, (8, 8), stride=4, sigma=2.0)
    assert mask.tolist() == [[True, False, False]]
    assert maps[0, 1:].abs().sum() == 0 and torch.isfinite(maps).all()
