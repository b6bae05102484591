import hashlib

import h5py
import numpy as np
import pytest

from posecore.errors import InputError
from posecore.io.dataset import TrainingDataset, read_dataset, write_dataset


def make_dataset(n: int = 6, k: int = 3, seed: int = 0) -> TrainingDataset:
    rng = np.random.default_rng(seed)
    keypoints = rng.uniform(0, 30, size=(n, k, 2)).astype(np.float32)
    keypoints[1, 2] = np.nan
    return TrainingDataset(
        images=rng.integers(0, 256, size=(n, 24, 32, 3), dtype=np.uint8),
        keypoints=keypoints,
        split=np.array(["train"] * (n - 2) + ["val", "test"], dtype=object),
        keypoint_names=("a", "b", "c"),
        skeleton=((0, 1), (1, 2)),
        swap_pairs=((0, 2),),
        source_video=np.array([f"v{i % 2}" for i in range(n)], dtype=object),
        source_frame=np.arange(n, dtype=np.int64) * 10,
        source_path=np.array([f"labeled-data/v/img{i:05d}.png" for i in range(n)], dtype=object),
    )


def test_round_trip_keeps_every_field(tmp_path):
    dataset = make_dataset()
    path = tmp_path / "d.h5"
    content_hash = write_dataset(dataset, path)
    back = read_dataset(path)
    np.testing.assert_array_equal(back.images, dataset.images)
    np.testing.assert_array_equal(back.keypoints, dataset.keypoints)  # NaN where NaN
    assert list(back.split) == list(dataset.split)
    assert back.keypoint_names == ("a", "b", "c")
    assert back.skeleton == ((0, 1), (1, 2))
    assert back.swap_pairs == ((0, 2),)
    assert list(back.source_video) == list(dataset.source_video)
    assert list(back.source_frame) == list(dataset.source_frame)
    assert back.content_hash() == content_hash
    assert list(back.indices("test")) == [5]
    assert not list(tmp_path.glob(".*tmp*")), "the temporary file is left behind"


def test_file_opens_with_plain_h5py(tmp_path):
    path = tmp_path / "d.h5"
    write_dataset(make_dataset(), path)
    with h5py.File(path, "r") as f:
        assert f["images"].shape == (6, 24, 32, 3)
        assert f["images"].dtype == np.uint8
        assert f["keypoints"].dtype == np.float32
        assert f["split"][5].decode() == "test"
        assert list(f.attrs["keypoint_names"]) == ["a", "b", "c"]


def test_damaged_content_is_detected(tmp_path):
    path = tmp_path / "d.h5"
    write_dataset(make_dataset(), path)
    with h5py.File(path, "r+") as f:
        f["keypoints"][0, 0, 0] = 999.0
    with pytest.raises(InputError, match="hash"):
        read_dataset(path)


def test_missing_and_foreign_files_are_named(tmp_path):
    with pytest.raises(InputError, match=r"nope\.h5"):
        read_dataset(tmp_path / "nope.h5")
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = 1
    with pytest.raises(InputError, match=r"foreign\.h5"):
        read_dataset(foreign)


def test_shapes_are_checked():
    dataset = make_dataset()
    with pytest.raises(ValueError, match="keypoints"):
        TrainingDataset(dataset.images, dataset.keypoints[:, :2], dataset.split, dataset.keypoint_names)


def _with_extras(dataset: TrainingDataset) -> TrainingDataset:
    """The dataset with frame 2 padded from 20x30 (H x W) and a label outside frame 4."""
    outside = np.full_like(dataset.keypoints, np.nan)
    outside[4, 1] = (35.5, -2.0)
    sizes = np.tile(np.array([24, 32], np.int32), (len(dataset.images), 1))
    sizes[2] = (20, 30)
    return TrainingDataset(
        dataset.images, dataset.keypoints, dataset.split, dataset.keypoint_names, image_sizes=sizes, outside_xy=outside
    )


def test_image_sizes_and_outside_labels_round_trip(tmp_path):
    dataset = _with_extras(make_dataset())
    write_dataset(dataset, tmp_path / "d.h5")
    back = read_dataset(tmp_path / "d.h5")
    assert back.image_sizes.dtype == np.int32 and back.outside_xy.dtype == np.float32
    np.testing.assert_array_equal(back.image_sizes, dataset.image_sizes)
    assert back.padded.tolist() == [False, False, True, False, False, False]
    np.testing.assert_array_equal(back.outside_xy, dataset.outside_xy)
    with h5py.File(tmp_path / "d.h5", "r") as f:
        assert f.attrs["format_version"] == 2
        assert f["image_sizes"][2].tolist() == [20, 30]
    # They count in the hash: a changed outside label is damage.
    with h5py.File(tmp_path / "d.h5", "r+") as f:
        f["outside_xy"][4, 1, 0] = 36.0
    with pytest.raises(InputError, match="hash"):
        read_dataset(tmp_path / "d.h5")


def test_a_format_1_file_reads_as_full_size_and_nothing_outside(tmp_path):
    dataset = make_dataset()
    path = tmp_path / "d.h5"
    write_dataset(dataset, path)
    with h5py.File(path, "r+") as f:  # what format 1 wrote: no image_sizes, no outside_xy, its own hash
        del f["image_sizes"], f["outside_xy"]
        f.attrs["format_version"] = 1
        digest = hashlib.sha256()
        digest.update(dataset.images.tobytes())
        digest.update(dataset.keypoints.astype(np.float32).tobytes())
        digest.update("\n".join(dataset.split).encode())
        digest.update("\n".join(dataset.keypoint_names).encode())
        f.attrs["content_hash"] = digest.hexdigest()
    back = read_dataset(path)
    assert (back.image_sizes == [24, 32]).all() and back.image_sizes.shape == (6, 2)
    assert back.outside_xy.shape == (6, 3, 2) and np.isnan(back.outside_xy).all()


def test_extra_fields_are_checked():
    dataset = make_dataset()
    with pytest.raises(ValueError, match="outside_xy"):
        TrainingDataset(dataset.images, dataset.keypoints, dataset.split, ("a", "b", "c"), outside_xy=np.zeros((6, 2)))
    with pytest.raises(ValueError, match="image_sizes must lie in"):
        TrainingDataset(
            dataset.images, dataset.keypoints, dataset.split, ("a", "b", "c"), image_sizes=np.full((6, 2), 40)
        )
