import numpy as np
import torch

from posecore.geometry import map_to_image
from posecore.ops import find_peaks
from posecore.train.targets import confidence_maps, graph_maps, training_targets


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


def test_graph_maps_are_one_along_each_bone_and_fall_off_across_it():
    # Bone from (1.5, 5.5) to (25.5, 5.5): along row y = 5.5, the centres of map row 1 at stride 4.
    keypoints = torch.tensor([[[1.5, 5.5], [25.5, 5.5], [float("nan"), 9.0]]])
    maps, mask = graph_maps(keypoints, ((0, 1), (1, 2)), (4, 8), stride=4, sigma=2.0)
    assert maps.shape == (1, 2, 4, 8) and mask.tolist() == [[True, False]]
    assert torch.allclose(maps[0, 0, 1, :7], torch.ones(7))  # cells x = 1.5 ... 25.5 lie on the bone
    assert np.isclose(float(maps[0, 0, 2, 3]), np.exp(-(4.0**2) / (2 * 2.0**2)), rtol=1e-5)  # 4 px off it
    assert np.isclose(float(maps[0, 0, 1, 7]), np.exp(-(4.0**2) / (2 * 2.0**2)), rtol=1e-5)  # 4 px past its end
    assert maps[0, 1].abs().sum() == 0  # an edge with an unlabeled end is masked and zero


def test_training_targets_stack_keypoints_then_bones():
    keypoints = torch.tensor([[[10.0, 10.0], [20.0, 12.0]]])
    maps, mask = training_targets(keypoints, (8, 8), 4, 2.0, skeleton=((0, 1),))
    assert maps.shape == (1, 3, 8, 8) and mask.all()
    assert torch.equal(maps[:, :2], confidence_maps(keypoints, (8, 8), 4, 2.0)[0])


def test_several_animals_give_one_peak_each_in_one_map():
    import torch

    from posecore.geometry import map_to_image
    from posecore.ops.multipeak import find_peaks_multi
    from posecore.train.targets import confidence_maps

    keypoints = torch.tensor([[[[10.0, 12.0]], [[40.0, 20.0]], [[float("nan"), float("nan")]]]])  # (B=1, I=3, K=1, 2)
    maps, mask = confidence_maps(keypoints, (16, 24), 2, 2.0)
    assert maps.shape == (1, 1, 16, 24) and mask.tolist() == [[True]]  # an empty map is a label too
    peaks = find_peaks_multi(maps, 3, threshold=0.5)[0, 0]  # (3, 3)
    found = map_to_image(peaks[:2, :2], 2)
    assert torch.allclose(found[found[:, 0].argsort()], keypoints[0, :2, 0], atol=1e-3)
    assert torch.isnan(peaks[2]).all()
    empty, _ = confidence_maps(torch.full((1, 2, 1, 2), float("nan")), (4, 4), 2, 2.0)
    assert not empty.any()
