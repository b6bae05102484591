import numpy as np
import pytest

from posecore.errors import InputError
from posecore.io.dataset import TrainingDataset
from posecore.multi.topdown import (
    CENTROID,
    TopDownConfig,
    centres,
    centroid_dataset,
    crop_at,
    crop_corners,
    crop_size_for,
    from_scaled,
    instance_dataset,
    scale_images,
    scale_ratio,
    to_scaled,
)


def _herd(n: int = 4) -> TrainingDataset:
    """Frames of 96x128 with two or three 'animals': 3 keypoints each, the keypoints drawn as bright pixels."""
    rng = np.random.default_rng(0)
    images = np.zeros((n, 96, 128, 3), np.uint8)
    keypoints = np.full((n, 3, 3, 2), np.nan, np.float32)
    for f in range(n):
        for i in range(2 + f % 2):
            centre = rng.uniform(20, [108, 76])
            keypoints[f, i] = centre + rng.uniform(-12, 12, (3, 2))
            for x, y in np.rint(keypoints[f, i]).astype(int):
                images[f, y, x] = 255
    keypoints[1, 0, 2] = np.nan  # an unlabeled keypoint
    tracks = np.where(np.isfinite(keypoints[..., 0]).any(-1), np.array(["a", "b", "c"], object), "")
    return TrainingDataset(images, keypoints, np.array(["train", "train", "val", "test"][:n], object), ("p", "q", "r"),
                           tracks=tracks)  # fmt: skip


def test_centres_are_box_middles_or_the_anchor() -> None:
    points = np.array([[[0.0, 0.0], [10.0, 4.0], [np.nan, np.nan]], [[np.nan, np.nan]] * 3])
    np.testing.assert_array_equal(centres(points), [[5.0, 2.0], [np.nan, np.nan]])
    np.testing.assert_array_equal(centres(points, anchor=1), [[10.0, 4.0], [np.nan, np.nan]])
    np.testing.assert_array_equal(centres(points, anchor=2), [[5.0, 2.0], [np.nan, np.nan]])  # anchor unlabeled


def test_crops_keep_pixels_where_the_keypoints_say() -> None:
    ds = _herd()
    config = TopDownConfig(max_animals=3, crop_size=32)
    crops = instance_dataset(ds, config, 32)
    assert len(crops.images) == int(ds.instance_counts().sum()) == 10 and crops.images.shape[1:] == (32, 32, 3)
    assert crops.split.tolist() == ["train"] * 5 + ["val"] * 2 + ["test"] * 3  # each crop keeps its frame's split
    for image, points in zip(crops.images, crops.keypoints, strict=True):
        for x, y in np.rint(points[np.isfinite(points).all(-1)]).astype(int):
            if 0 <= x < 32 and 0 <= y < 32:
                assert image[y, x].max() == 255  # the bright pixel of the keypoint is where its label is
    # The animal is in the middle of its crop.
    middle = centres(crops.keypoints)
    assert np.all(np.abs(middle - 16) <= 0.5 + 1e-6)


def test_crops_beyond_the_edge_are_zero() -> None:
    images = np.full((1, 10, 10, 1), 7, np.uint8)
    crop = crop_at(images, np.array([0]), crop_corners(np.array([[0.2, 9.4]]), 8), 8)[0]
    assert crop.shape == (8, 8, 1)
    corner = crop_corners(np.array([0.2, 9.4]), 8)
    assert corner.tolist() == [-4, 5]
    assert (crop[:5, 4:] == 7).all() and (crop[:, :4] == 0).all() and (crop[5:] == 0).all()


def test_scaling_keeps_points_on_their_pixels() -> None:
    image = np.zeros((1, 64, 96, 1), np.uint8)
    image[0, 20:24, 40:44] = 255  # a 4x4 square centred on (41.5, 21.5)
    small = scale_images(image, 0.5).numpy()[0, ..., 0].astype(float)
    assert small.shape == (32, 48)
    rows, cols = np.indices(small.shape)
    centroid = np.array([(small * cols).sum(), (small * rows).sum()]) / small.sum()
    ratio = scale_ratio(64, 96, 0.5)
    np.testing.assert_allclose(centroid, to_scaled(np.array([41.5, 21.5]), ratio), atol=1e-6)
    np.testing.assert_allclose(from_scaled(to_scaled(np.array([3.0, 4.0]), ratio), ratio), [3.0, 4.0])


def test_the_centroid_dataset_has_one_keypoint_per_animal_on_scaled_frames() -> None:
    ds = _herd()
    small = centroid_dataset(ds, TopDownConfig(max_animals=3, centroid_scale=0.5))
    assert small.multi_animal and small.keypoint_names == (CENTROID,) and small.images.shape == (4, 48, 64, 3)
    assert small.keypoints.shape == (4, 3, 1, 2) and small.tracks.tolist() == ds.tracks.tolist()
    np.testing.assert_allclose(small.keypoints[:, :, 0], to_scaled(centres(ds.keypoints), np.array([0.5, 0.5])))


def test_crop_size_comes_from_the_largest_animal() -> None:
    ds = _herd()
    reach = np.nanmax(np.abs(ds.keypoints - centres(ds.keypoints)[..., None, :]))
    size = crop_size_for(ds, TopDownConfig(max_animals=3, crop_margin=1.25))
    assert size % 32 == 0 and size >= 2 * reach * 1.25 and size - 32 < 2 * reach * 1.25
    assert crop_size_for(ds, TopDownConfig(max_animals=3, crop_size=48)) == 48


@pytest.mark.parametrize(
    ("settings", "expected"),
    [({"max_animals": 0}, "max_animals"), ({"max_animals": 2, "centroid_scale": 2.0}, "centroid_scale"),
     ({"max_animals": 2, "crop": 3}, "animals.crop")],
)  # fmt: skip
def test_bad_settings_name_the_key(settings: dict, expected: str) -> None:
    with pytest.raises(InputError, match=expected):
        TopDownConfig.from_dict(settings, "config.yaml")
