from dataclasses import replace

import numpy as np
import pytest
import torch

from posecore.train.augment import Augmentation, augment_batch
from posecore.train.config import NO_AUGMENTATION

RED, GREEN, BLUE = 0, 1, 2
SWAP = ((0, 1),)  # left_ear <-> right_ear


def _blobs(batch: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 3, 40, 50) frames: a red blob at the left ear, green at the right ear, blue at the nose."""
    images = torch.zeros(batch, 3, 40, 50)
    keypoints = torch.tensor([[14.0, 12.0], [34.0, 13.0], [24.0, 27.0]])  # left_ear, right_ear, nose (x, y)
    rows, cols = torch.meshgrid(torch.arange(40.0), torch.arange(50.0), indexing="ij")
    for channel, (x, y) in enumerate(keypoints.tolist()):
        images[:, channel][:, (cols - x) ** 2 + (rows - y) ** 2 <= 2.5**2] = 1.0
    return images, keypoints.expand(batch, 3, 2).clone()


def _colour_at(images: torch.Tensor, keypoints: torch.Tensor) -> torch.Tensor:
    """(B, K): the brightest channel at each keypoint's pixel, -1 where the keypoint is missing."""
    b, k = keypoints.shape[:2]
    out = torch.full((b, k), -1)
    for i in range(b):
        for j in range(k):
            if torch.isfinite(keypoints[i, j]).all():
                x, y = (round(float(v)) for v in keypoints[i, j])
                out[i, j] = int(images[i, :, y, x].argmax())
    return out


def _handedness(keypoints: torch.Tensor) -> torch.Tensor:
    """(B,) sign of the triangle left_ear -> right_ear -> nose: a mirror image reverses it."""
    a, b, c = keypoints[:, 0], keypoints[:, 1], keypoints[:, 2]
    return torch.sign((b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0])


def test_keypoints_follow_the_image_and_left_stays_left_under_flips():
    images, keypoints = _blobs()
    augmentation = replace(
        NO_AUGMENTATION, flip=True, flip_vertical=True, rotation_deg=30, scale=0.2, translation_px=3, swap_pairs=SWAP
    )
    generator = torch.Generator().manual_seed(0)
    warped, moved = augment_batch(images, keypoints, augmentation, (0.0,) * 3, (1.0,) * 3, generator)
    assert torch.isfinite(moved).all()  # nothing left the frame with these magnitudes
    colours = _colour_at(warped, moved)
    assert (colours[:, 2] == BLUE).all()  # the nose is never swapped
    # The animal's left ear is always on its left: the label order keeps its handedness, ...
    assert (_handedness(moved) == _handedness(keypoints)).all()
    # ... so in mirrored frames "left_ear" now sits on the blob that was drawn as the right ear.
    mirrored = colours[:, 0] == GREEN
    assert (colours[mirrored, 1] == RED).all() and (colours[~mirrored] == torch.tensor([RED, GREEN, BLUE])).all()
    assert 0 < int(mirrored.sum()) < len(images)


def test_both_flips_together_are_a_rotation_and_swap_nothing():
    images, keypoints = _blobs(64)
    generator = torch.Generator().manual_seed(1)
    augmentation = replace(NO_AUGMENTATION, flip=True, flip_vertical=True, swap_pairs=SWAP)
    warped, moved = augment_batch(images, keypoints, augmentation, (0.0,) * 3, (1.0,) * 3, generator)
    rotated = (moved[:, 2] - torch.tensor([50 - 1 - 24.0, 40 - 1 - 27.0])).abs().sum(-1) < 1e-4  # nose at 180 deg
    assert rotated.any()
    assert (_colour_at(warped[rotated], moved[rotated]) == torch.tensor([RED, GREEN, BLUE])).all()


def test_keypoints_pushed_out_of_the_frame_stay_labeled_outside_it():
    images, keypoints = _blobs(16)
    generator = torch.Generator().manual_seed(2)
    _, moved = augment_batch(
        images, keypoints, replace(NO_AUGMENTATION, translation_px=30), (0.0,) * 3, (1.0,) * 3, generator
    )
    assert torch.isfinite(moved).all(), "a keypoint out of view is still known: its map is trained towards zero"
    outside = (moved[..., 0] > 50 - 0.5) | (moved[..., 0] < -0.5) | (moved[..., 1] > 40 - 0.5) | (moved[..., 1] < -0.5)
    assert outside.any() and not outside.all()
    shift = moved - keypoints  # the same shift for every keypoint of a frame, in view or not
    assert torch.allclose(shift, shift[:, :1].expand_as(shift), atol=1e-4)


def test_photometric_changes_stay_in_the_uint8_range_and_move_no_keypoint():
    rng = np.random.default_rng(0)
    raw = torch.from_numpy(rng.integers(0, 256, size=(8, 2, 24, 24)).astype(np.float32))
    mean, std = (120.0, 60.0), (50.0, 30.0)
    images = (raw - torch.tensor(mean).view(1, 2, 1, 1)) / torch.tensor(std).view(1, 2, 1, 1)
    keypoints = torch.tensor([[[3.0, 4.0]]]).expand(8, 1, 2)
    augmentation = replace(NO_AUGMENTATION, brightness=0.2, contrast=0.3, noise_std=0.05, blur_sigma_px=1.5)
    out, moved = augment_batch(images, keypoints, augmentation, mean, std, torch.Generator().manual_seed(0))
    assert torch.equal(moved, keypoints) and out.shape == images.shape
    back = out * torch.tensor(std).view(1, 2, 1, 1) + torch.tensor(mean).view(1, 2, 1, 1)  # uint8 units
    assert back.min() >= -1e-3 and back.max() <= 255 + 1e-3
    assert not torch.allclose(out, images)


def test_blur_smooths_and_brightness_shifts_within_its_range():
    images = torch.zeros(4, 1, 21, 21)
    images[:, :, 10, 10] = 100.0
    blurred, _ = augment_batch(
        images, torch.zeros(4, 0, 2), replace(NO_AUGMENTATION, blur_sigma_px=2.0), (0.0,), (1.0,)
    )
    assert (blurred[:, 0, 10, 10] <= 100).all() and torch.allclose(blurred.sum(dim=(-2, -1)), images.sum(dim=(-2, -1)))
    flat = torch.full((64, 1, 4, 4), 100.0)
    brighter, _ = augment_batch(flat, torch.zeros(64, 0, 2), replace(NO_AUGMENTATION, brightness=0.1), (0.0,), (1.0,))
    offsets = brighter[:, 0, 0, 0] - 100.0
    assert offsets.abs().max() <= 25.5 + 1e-4 and offsets.std() > 5


def test_a_window_of_the_warp_is_the_warped_frame_cut_there():
    images, keypoints = _blobs(8)
    augmentation = replace(NO_AUGMENTATION, flip=True, rotation_deg=30, scale=0.2, translation_px=5, swap_pairs=SWAP)
    corners = torch.tensor([[3, 5], [0, 0], [20, 10], [11, 2]] * 2)
    seen = []

    def window(moved: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        seen.append(moved.clone())
        return corners, (24, 30)

    full, moved = augment_batch(
        images, keypoints, augmentation, (0.0,) * 3, (1.0,) * 3, torch.Generator().manual_seed(3)
    )
    windows, in_window = augment_batch(
        images, keypoints, augmentation, (0.0,) * 3, (1.0,) * 3, torch.Generator().manual_seed(3), window
    )
    assert torch.equal(seen[0], moved)  # the window is chosen where the warp moved the keypoints
    assert windows.shape == (8, 3, 24, 30)
    assert torch.allclose(in_window, moved - corners[:, None].float())
    for frame, (left, top) in enumerate(corners.tolist()):
        assert torch.allclose(windows[frame], full[frame, :, top : top + 24, left : left + 30], atol=1e-4)


def test_a_seed_repeats_the_augmentation():
    images, keypoints = _blobs(4)
    augmentation = replace(NO_AUGMENTATION, flip=True, rotation_deg=20, noise_std=0.1, swap_pairs=SWAP)

    def run(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        return augment_batch(
            images, keypoints, augmentation, (0.0,) * 3, (1.0,) * 3, torch.Generator().manual_seed(seed)
        )

    (a, ka), (b, kb), (c, _) = run(5), run(5), run(6)
    assert torch.equal(a, b) and torch.equal(ka, kb) and not torch.equal(a, c)


@pytest.mark.parametrize(("key", "value"), [("scale", 1.0), ("contrast", 1.5), ("rotation_deg", -1.0)])
def test_impossible_magnitudes_are_refused(key, value):
    with pytest.raises(ValueError, match=key):
        Augmentation(**{key: value})


def test_a_flip_left_auto_is_refused_until_the_labels_decide_it():
    images, keypoints = _blobs(2)
    with pytest.raises(ValueError, match=r"train\.flip 'auto' must be decided from the labels first"):
        augment_batch(images, keypoints, Augmentation(flip="auto"), (0.0,) * 3, (1.0,) * 3)
