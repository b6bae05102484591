from dataclasses import replace

import numpy as np
import torch

from posecore.io.dataset import TrainingDataset
from posecore.train.config import NO_AUGMENTATION
from posecore.train.data import PoseDataset, channel_stats, prepare_batch, random_crops
from posecore.train.targets import training_targets


def _dataset() -> TrainingDataset:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(3, 30, 45, 1), dtype=np.uint8)
    keypoints = np.array([[[10, 12], [np.nan, np.nan]]] * 3, dtype=np.float32)
    return TrainingDataset(images, keypoints, np.array(["train", "val", "train"], dtype=object), ("a", "b"))


def test_items_are_the_split_s_raw_frames():
    data = _dataset()
    dataset = PoseDataset(data, "train")
    assert len(dataset) == 2
    item = dataset[1]
    assert item["image"].dtype == torch.uint8 and torch.equal(item["image"], torch.from_numpy(data.images[2]))
    assert torch.equal(item["keypoints"][0], torch.tensor([10.0, 12.0])) and torch.isnan(item["keypoints"][1]).all()
    assert len(PoseDataset(data, "train", indices=np.array([2]))) == 1


def test_batches_are_normalised_padded_and_have_masked_targets():
    data = _dataset()
    mean, std = channel_stats(data.images[[0, 2]])
    assert np.isclose(mean[0], data.images[[0, 2]].mean()) and np.isclose(std[0], data.images[[0, 2]].std())
    batch = torch.utils.data.default_collate([PoseDataset(data, "train")[i] for i in range(2)])
    prepared = prepare_batch(batch, mean, std, input_multiple=16, output_stride=4, sigma_px=2.0)
    assert prepared["image"].shape == (2, 1, 32, 48) and prepared["maps"].shape == (2, 2, 8, 12)
    expected = (data.images[2, :, :, 0].astype(np.float32) - mean[0]) / std[0]
    assert np.allclose(prepared["image"][1, 0, :30, :45].numpy(), expected, atol=1e-5)
    assert (prepared["image"][:, :, 30:] == 0).all() and (prepared["image"][:, :, :, 45:] == 0).all()
    assert prepared["mask"].tolist() == [[True, False]] * 2 and prepared["maps"][:, 1].abs().sum() == 0


def test_posture_graph_targets_follow_the_keypoint_maps():
    keypoints = torch.tensor([[[4.0, 4.0], [20.0, 4.0], [float("nan")] * 2]])
    batch = {"image": torch.zeros(1, 16, 32, 1, dtype=torch.uint8), "keypoints": keypoints}
    prepared = prepare_batch(batch, (0.0,), (1.0,), 8, 4, 2.0, skeleton=((0, 1), (1, 2)))
    assert prepared["maps"].shape == (1, 5, 4, 8)
    assert prepared["mask"].tolist() == [[True, True, False, True, False]]


def test_augmented_batches_move_images_and_keypoints_together():
    data = _dataset()
    batch = torch.utils.data.default_collate([PoseDataset(data, "train")[i] for i in range(2)])
    generator = torch.Generator().manual_seed(0)
    augmentation = replace(NO_AUGMENTATION, translation_px=4.0)
    prepared = prepare_batch(batch, (100.0,), (50.0,), 16, 4, 2.0, None, augmentation, generator)
    assert not torch.equal(prepared["keypoints"][:, 0], batch["keypoints"][:, 0])
    assert torch.isnan(prepared["keypoints"][:, 1]).all() and prepared["mask"][:, 1].sum() == 0


def test_random_crops_cut_windows_around_labeled_keypoints_and_move_them():
    # Each image holds its own column index as pixel value, so a crop tells where it was cut.
    width, height = 200, 120
    columns = torch.arange(width, dtype=torch.float32).expand(height, width)
    images = torch.stack([columns, columns + 1000])[:, None]  # (2, 1, H, W)
    nan = float("nan")
    keypoints = torch.tensor([[[150.0, 60.0], [nan, nan]], [[nan, nan], [nan, nan]]])  # frame 1: none labeled
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        crops, moved = random_crops(images, keypoints, 64, generator)
        assert crops.shape == (2, 1, 64, 64)
        left = int(crops[0, 0, 0, 0])
        assert torch.equal(crops[0, 0, 0], torch.arange(left, left + 64, dtype=torch.float32))
        # The keypoint lies in the window (jitter is at most a quarter of it), at its new place.
        assert 0 <= moved[0, 0, 0] < 64 and 0 <= moved[0, 0, 1] < 64
        assert moved[0, 0, 0] == 150 - left
        assert torch.isnan(moved[0, 1]).all() and torch.isnan(moved[1]).all()
        assert 0 <= int(crops[1, 0, 0, 0]) - 1000 <= width - 64  # unlabeled frame: a window anywhere inside


def test_background_crops_land_anywhere_and_keep_the_keypoints_labeled():
    width, height = 400, 100
    columns = torch.arange(width, dtype=torch.float32).expand(height, width)
    images = columns.expand(64, 1, height, width)  # (64, 1, H, W)
    keypoints = torch.tensor([[[20.0, 50.0]]]).expand(64, 1, 2)  # near the left edge
    generator = torch.Generator().manual_seed(0)
    crops, moved = random_crops(images, keypoints, 64, generator)
    assert int(crops[:, 0, 0, 0].max()) <= 20 + 16, "around the keypoint: at the left edge"
    crops, moved = random_crops(images, keypoints, 64, generator, background=1.0)
    lefts = crops[:, 0, 0, 0]
    assert float(lefts.max()) > width / 2, "anywhere: some windows far from the keypoint"
    assert torch.equal(moved[:, 0, 0], 20 - lefts) and torch.isfinite(moved).all()
    crops, _ = random_crops(images, keypoints, 64, generator, background=0.5)
    assert 0 < int((crops[:, 0, 0, 0] > 100).sum()) < 64


def test_random_crops_keep_a_side_shorter_than_the_crop_and_keep_keypoints_left_outside_labeled():
    images = torch.zeros(1, 1, 40, 300)
    keypoints = torch.tensor([[[10.0, 20.0], [290.0, 30.0]]])
    crops, moved = random_crops(images, keypoints, 64, torch.Generator().manual_seed(1))
    assert crops.shape == (1, 1, 40, 64)
    # The two keypoints are 280 px apart: the window holds one of them. The other keeps its
    # place relative to the window, outside it, so its map is trained towards zero there.
    inside = (moved[0, :, 0] >= 0) & (moved[0, :, 0] < 64)
    assert int(inside.sum()) == 1 and torch.isfinite(moved).all()
    assert torch.allclose(moved[0, 1, 0] - moved[0, 0, 0], torch.tensor(280.0))
    maps, mask = training_targets(moved, (10, 16), 4, 2.0)
    assert mask.all() and float(maps[0, int(torch.nonzero(~inside)[0])].max()) < 1e-6


def test_random_crops_centre_on_keypoints_in_view_only():
    images = torch.zeros(64, 1, 40, 300)
    keypoints = torch.tensor([[[-30.0, 20.0], [250.0, 20.0]]]).expand(64, 2, 2)  # the first moved out of view
    _, moved = random_crops(images, keypoints, 64, torch.Generator().manual_seed(0))
    assert ((moved[:, 1, 0] >= 0) & (moved[:, 1, 0] < 64)).all(), "every window holds the keypoint in view"


def test_targets_are_zero_in_the_padding_even_for_a_keypoint_just_outside_the_frame():
    batch = {"image": torch.zeros(1, 30, 30, 1, dtype=torch.uint8), "keypoints": torch.tensor([[[31.0, 10.0]]])}
    prepared = prepare_batch(batch, (0.0,), (1.0,), 16, 4, 2.0)  # padded to 32 x 32: maps 8 x 8, the frame's 8 x 8
    assert prepared["mask"].all() and float(prepared["maps"][0, 0, :, 7].max()) > 0.1, "its tail reaches the frame"
    batch["image"] = torch.zeros(1, 30, 20, 1, dtype=torch.uint8)
    batch["keypoints"] = torch.tensor([[[21.0, 10.0]]])  # just right of a 20-pixel-wide frame
    prepared = prepare_batch(batch, (0.0,), (1.0,), 16, 4, 2.0)  # padded to 32 wide: cells 5 to 7 are padding
    maps = prepared["maps"][0, 0]
    assert prepared["mask"].all() and float(maps[:, 5:].abs().max()) == 0.0 and float(maps[:, 4].max()) > 0.1


def test_training_batches_are_cropped_and_validation_batches_are_not():
    data = _dataset()
    batch = torch.utils.data.default_collate([PoseDataset(data, "train")[i] for i in range(2)])
    generator = torch.Generator().manual_seed(0)
    cropped = prepare_batch(batch, (100.0,), (50.0,), 8, 4, 2.0, generator=generator, crop_size=16)
    assert cropped["image"].shape == (2, 1, 16, 16) and cropped["maps"].shape == (2, 2, 4, 4)
    assert cropped["mask"][:, 0].all(), "the labeled keypoint stays in its crop"
    assert prepare_batch(batch, (100.0,), (50.0,), 8, 4, 2.0)["image"].shape == (2, 1, 32, 48)
