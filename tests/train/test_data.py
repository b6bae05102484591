import numpy as np
import torch

from posecore.io.dataset import TrainingDataset
from posecore.train.data import Augmentation, PoseDataset, affine, channel_stats, flip_horizontal


def _two_dot_image() -> tuple[torch.Tensor, torch.Tensor]:
    """A 3-channel 20x30 image: a red dot at the left ear (5, 4), a green dot at the right ear (22, 6)."""
    image = torch.zeros(3, 20, 30)
    image[0, 4, 5] = 1.0  # red: left ear (x=5, y=4)
    image[1, 6, 22] = 1.0  # green: right ear (x=22, y=6)
    image[2, 15, 14] = 1.0  # blue: nose (x=14, y=15), on no swap pair
    keypoints = torch.tensor([[5.0, 4.0], [22.0, 6.0], [14.0, 15.0]])  # left_ear, right_ear, nose
    return image, keypoints


def _pixel(image: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
    return image[:, round(float(xy[1])), round(float(xy[0]))]


def test_flip_mirrors_the_image_and_swaps_left_and_right():
    image, keypoints = _two_dot_image()
    flipped, moved = flip_horizontal(image, keypoints, swap_pairs=((0, 1),))
    # In the mirror image the animal's left ear is the dot that was its right ear (green).
    assert moved[0].tolist() == [29 - 22.0, 6.0] and _pixel(flipped, moved[0]).tolist() == [0, 1, 0]
    assert moved[1].tolist() == [29 - 5.0, 4.0] and _pixel(flipped, moved[1]).tolist() == [1, 0, 0]
    assert moved[2].tolist() == [29 - 14.0, 15.0] and _pixel(flipped, moved[2]).tolist() == [0, 0, 1]


def test_rotation_and_shift_move_keypoints_with_the_image():
    image, keypoints = _two_dot_image()
    warped, moved = affine(image, keypoints, angle_deg=90.0, shift=(2.0, -1.0))
    for k, colour in enumerate(([1, 0, 0], [0, 1, 0], [0, 0, 1])):
        assert torch.isfinite(moved[k]).all()
        assert torch.allclose(_pixel(warped, moved[k]), torch.tensor(colour, dtype=torch.float32), atol=1e-4)


def test_keypoints_moved_out_of_the_image_become_missing():
    image, keypoints = _two_dot_image()
    _, moved = affine(image, keypoints, angle_deg=0.0, shift=(10.0, 0.0))
    assert torch.isnan(moved[1]).all()  # x = 32 > 29.5
    assert torch.isfinite(moved[[0, 2]]).all()


def test_items_are_normalised_padded_and_have_masked_targets():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(3, 30, 45, 1), dtype=np.uint8)
    keypoints = np.array([[[10, 12], [np.nan, np.nan]]] * 3, dtype=np.float32)
    data = TrainingDataset(images, keypoints, np.array(["train", "val", "train"], dtype=object), ("a", "b"))
    mean, std = channel_stats(images[[0, 2]])
    assert np.isclose(mean[0], images[[0, 2]].mean()) and np.isclose(std[0], images[[0, 2]].std())
    dataset = PoseDataset(data, "train", mean, std, input_multiple=16, output_stride=4, sigma_px=2.0)
    assert len(dataset) == 2
    item = dataset[1]
    assert item["image"].shape == (1, 32, 48) and item["maps"].shape == (2, 8, 12)
    expected = (images[2, :, :, 0].astype(np.float32) - mean[0]) / std[0]
    assert np.allclose(item["image"][0, :30, :45].numpy(), expected, atol=1e-5)
    assert (item["image"][0, 30:] == 0).all() and (item["image"][0, :, 45:] == 0).all()
    assert item["mask"].tolist() == [True, False] and item["maps"][1].abs().sum() == 0


def test_augmentation_is_reproducible_with_a_seeded_generator():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 255, size=(2, 32, 32, 3), dtype=np.uint8)
    keypoints = rng.uniform(10, 20, size=(2, 2, 2)).astype(np.float32)
    data = TrainingDataset(images, keypoints, np.array(["train"] * 2, dtype=object), ("l", "r"), swap_pairs=((0, 1),))
    augmentation = Augmentation(flip=True, translation_px=3.0, rotation_deg=20.0, swap_pairs=((0, 1),))

    def sample(seed: int) -> dict:
        generator = torch.Generator().manual_seed(seed)
        dataset = PoseDataset(data, "train", (0.0,) * 3, (1.0,) * 3, 16, 4, 2.0, augmentation, generator)
        return dataset[0]

    a, b, c = sample(0), sample(0), sample(1)
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["keypoints"], b["keypoints"])
    assert not torch.equal(a["keypoints"], c["keypoints"])
