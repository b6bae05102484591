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
