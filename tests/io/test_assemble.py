from __future__ import annotations

import shutil
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from posecore.errors import InputError
from posecore.io.assemble import SplitConfig, assemble_dataset, load_image, split_frames
from posecore.io.dataset import read_dataset, write_dataset
from posecore.io.labels import read_labels

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
MIRROR = DATA / "lp-mirror-mouse"
MIRROR_CSV = MIRROR / "CollectedData.csv"
OPENFIELD = DATA / "dlc-openfield" / "labeled-data" / "m4s1"
OPENFIELD_H5 = OPENFIELD / "CollectedData_Pranav.h5"
OPENFIELD_CSV = OPENFIELD / "CollectedData_Pranav.csv"
OPENFIELD_KEYPOINTS = ("snout", "leftear", "rightear", "tailbase")


def _need(*paths: Path) -> None:
    for path in paths:
        if not path.exists():
            pytest.skip(f"{path} is absent")


@pytest.fixture(scope="module")
def mirror_keypoints() -> tuple[str, ...]:
    _need(MIRROR_CSV)
    return read_labels(MIRROR_CSV).keypoint_names


@pytest.fixture(scope="module")
def mirror_dataset(mirror_keypoints: tuple[str, ...]):
    return assemble_dataset([MIRROR_CSV], mirror_keypoints)


@pytest.fixture
def mini_project(tmp_path: Path) -> Path:
    """A Lightning Pose style project with the first 5 lp-mirror-mouse frames; returns its label file."""
    _need(MIRROR_CSV)
    frame = pd.read_csv(MIRROR_CSV, header=[0, 1, 2], index_col=0).iloc[:5]
    (tmp_path / "labeled-data").mkdir()
    for image in frame.index:
        shutil.copy(MIRROR / image, tmp_path / image)
    label = tmp_path / "CollectedData.csv"
    frame.to_csv(label)
    return label


def _edit(label: Path, edit) -> None:
    frame = pd.read_csv(label, header=[0, 1, 2], index_col=0)
    edit(frame).to_csv(label)


def test_mirror_mouse_dataset_matches_the_labels_and_pngs(mirror_dataset, mirror_keypoints) -> None:
    ds = mirror_dataset
    assert ds.images.shape == (90, 406, 396, 3)
    assert ds.images.dtype == np.uint8
    # Grey PNGs: three equal channels, each the PNG's value x 255.
    png = matplotlib.image.imread(MIRROR / "labeled-data" / "img01.png")
    np.testing.assert_array_equal(ds.images[0, :, :, 0], np.rint(png * 255).astype(np.uint8))
    assert (ds.images[..., 0] == ds.images[..., 2]).all()
    assert ds.keypoint_names == mirror_keypoints
    assert int(np.isnan(ds.keypoints).sum()) == 268
    np.testing.assert_array_equal(ds.keypoints, read_labels(MIRROR_CSV).keypoints)
    np.testing.assert_array_equal(ds.source_frame, np.arange(1, 91))
    assert set(ds.source_video) == {"lp-mirror-mouse"}
    assert ds.source_path[0].endswith("labeled-data/img01.png")
    assert {name: int((ds.split == name).sum()) for name in ("train", "val", "test")} == {
        "train": 72,
        "val": 9,
        "test": 9,
    }


def test_round_trip_through_the_hdf5_file(mirror_dataset, tmp_path: Path) -> None:
    path = tmp_path / "mirror.h5"
    content_hash = write_dataset(mirror_dataset, path)
    back = read_dataset(path)
    assert back.content_hash() == content_hash == mirror_dataset.content_hash()
    np.testing.assert_array_equal(back.keypoints, mirror_dataset.keypoints)  # NaN in the same places
    np.testing.assert_array_equal(back.images, mirror_dataset.images)
    np.testing.assert_array_equal(back.split, mirror_dataset.split)
    np.testing.assert_array_equal(back.source_frame, mirror_dataset.source_frame)
    assert list(back.source_path) == list(mirror_dataset.source_path)


def test_openfield_dataset_from_h5_has_the_csv_numbers() -> None:
    _need(OPENFIELD_H5, OPENFIELD_CSV)
    order = ("tailbase", "snout", "leftear", "rightear")  # config order differs from the file's
    ds = assemble_dataset(
        [OPENFIELD_H5],
        order,
        skeleton=[("snout", "leftear"), ("snout", "rightear"), ("snout", "tailbase")],
        swap_pairs=[("leftear", "rightear")],
        split=SplitConfig(val_fraction=0.2, test_fraction=0.1, seed=3),
    )
    assert ds.images.shape == (116, 480, 640, 3)
    table = read_labels(OPENFIELD_CSV)
    np.testing.assert_array_equal(ds.keypoints, table.keypoints[:, [3, 0, 1, 2]])
    assert ds.keypoint_names == order
    assert ds.skeleton == ((1, 2), (1, 3), (1, 0))
    assert ds.swap_pairs == ((2, 3),)
    assert set(ds.source_video) == {"m4s1"}
    assert ds.source_frame[0] == 0 and ds.source_frame[-1] == int(table.image_paths[-1][-8:-4])
    assert (int((ds.split == "test").sum()), int((ds.split == "val").sum())) == (12, 23)


def test_split_is_seeded_and_deterministic() -> None:
    config = SplitConfig(val_fraction=0.15, test_fraction=0.1, seed=7)
    first = split_frames(40, config)
    np.testing.assert_array_equal(first, split_frames(40, config))
    assert not np.array_equal(first, split_frames(40, SplitConfig(val_fraction=0.15, test_fraction=0.1, seed=8)))
    # round(0.1 * 40) = 4 test, round(0.15 * 40) = 6 val.
    assert [int((first == s).sum()) for s in ("train", "val", "test")] == [30, 6, 4]
    # The shuffle is numpy's default_rng(seed).permutation: test first, then val.
    order = np.random.default_rng(7).permutation(40)
    assert set(np.flatnonzero(first == "test")) == set(order[:4])
    assert set(np.flatnonzero(first == "val")) == set(order[4:10])


@pytest.mark.parametrize(
    ("n", "val", "test", "expected"),
    [
        (3, 0.1, 0.1, [1, 1, 1]),  # at least one each once there are 3 frames
        (10, 0.25, 0.05, [6, 3, 1]),  # 2.5 rounds up to 3, 0.5 up to 1
        (2, 0.1, 0.1, [2, 0, 0]),
        (5, 0.0, 0.0, [5, 0, 0]),
        (1, 0.4, 0.4, [1, 0, 0]),
    ],
)
def test_split_fractions(n: int, val: float, test: float, expected: list[int]) -> None:
    names = split_frames(n, SplitConfig(val_fraction=val, test_fraction=test))
    assert [int((names == s).sum()) for s in ("train", "val", "test")] == expected


def test_split_config_refuses_impossible_fractions() -> None:
    with pytest.raises(ValueError, match="val_fraction"):
        SplitConfig(val_fraction=1.5)
    with pytest.raises(ValueError, match="leave frames to train"):
        SplitConfig(val_fraction=0.5, test_fraction=0.5)


def test_file_keypoint_missing_from_config_names_it(mini_project: Path, mirror_keypoints) -> None:
    with pytest.raises(InputError) as caught:
        assemble_dataset([mini_project], mirror_keypoints[1:])
    message = str(caught.value)
    assert str(mini_project) in message and repr(mirror_keypoints[0]) in message and "not in the config" in message


def test_config_keypoint_missing_from_file_names_both(mini_project: Path, mirror_keypoints) -> None:
    with pytest.raises(InputError) as caught:
        assemble_dataset([mini_project], (*mirror_keypoints, "tongue"))
    message = str(caught.value)
    assert str(mini_project) in message and "'tongue'" in message and "missing from the file" in message


def test_missing_image_names_file_row_and_image(mini_project: Path, mirror_keypoints) -> None:
    (mini_project.parent / "labeled-data" / "img03.png").unlink()
    with pytest.raises(InputError) as caught:
        assemble_dataset([mini_project], mirror_keypoints)
    message = str(caught.value)
    assert str(mini_project) in message and "(row 2)" in message and "labeled-data/img03.png" in message


def test_unreadable_image_names_file_and_row(mini_project: Path, mirror_keypoints) -> None:
    (mini_project.parent / "labeled-data" / "img02.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="cannot read image") as caught:
        assemble_dataset([mini_project], mirror_keypoints)
    assert str(mini_project) in str(caught.value) and "(row 1)" in str(caught.value)


@pytest.mark.parametrize(("coord", "value"), [("x", 395.6), ("x", -0.6), ("y", 405.51)])
def test_coordinate_outside_the_image_names_file_row_and_keypoint(
    mini_project: Path, mirror_keypoints, coord: str, value: float
) -> None:
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[frame.index[3], ("rick", "nose_bot", coord)] = value
        return frame

    _edit(mini_project, edit)
    with pytest.raises(InputError, match="outside image") as caught:
        assemble_dataset([mini_project], mirror_keypoints)
    message = str(caught.value)
    assert str(mini_project) in message and "(row 3)" in message and "'nose_bot'" in message and f"{value:g}" in message


def test_coordinates_on_the_border_are_accepted(mini_project: Path, mirror_keypoints) -> None:
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[frame.index[0], ("rick", "nose_bot", "x")] = 395.5  # W - 0.5: edge of the last pixel
        frame.loc[frame.index[0], ("rick", "nose_bot", "y")] = -0.5
        return frame

    _edit(mini_project, edit)
    ds = assemble_dataset([mini_project], mirror_keypoints)
    np.testing.assert_array_equal(ds.keypoints[0, mirror_keypoints.index("nose_bot")], [395.5, -0.5])


def test_images_of_different_sizes_name_both(mini_project: Path, mirror_keypoints) -> None:
    _need(OPENFIELD)
    shutil.copy(OPENFIELD / "img0000.png", mini_project.parent / "labeled-data" / "img04.png")  # 640x480
    with pytest.raises(InputError) as caught:
        assemble_dataset([mini_project], mirror_keypoints)
    message = str(caught.value)
    assert str(mini_project) in message and "(row 3)" in message
    assert "labeled-data/img04.png" in message and "640x480" in message
    assert "labeled-data/img01.png" in message and "396x406" in message


def test_duplicate_rows_name_both(mini_project: Path, mirror_keypoints) -> None:
    _edit(mini_project, lambda frame: pd.concat([frame, frame.iloc[[1]]]))
    with pytest.raises(InputError, match="labeled twice") as caught:
        assemble_dataset([mini_project], mirror_keypoints)
    message = str(caught.value)
    assert str(mini_project) in message and "(row 5)" in message and "row 1" in message
    assert "labeled-data/img02.png" in message


def test_the_same_image_in_two_files_names_both(mini_project: Path, mirror_keypoints) -> None:
    copy = mini_project.with_name("CollectedData_copy.csv")
    shutil.copy(mini_project, copy)
    with pytest.raises(InputError, match="labeled twice") as caught:
        assemble_dataset([mini_project, copy], mirror_keypoints)
    assert str(copy) in str(caught.value) and str(mini_project) in str(caught.value)


def test_empty_label_file_is_refused(mini_project: Path, mirror_keypoints) -> None:
    _edit(mini_project, lambda frame: frame.iloc[:0])
    with pytest.raises(InputError, match="no labeled rows") as caught:
        assemble_dataset([mini_project], mirror_keypoints)
    assert str(mini_project) in str(caught.value)


def test_unknown_skeleton_name_is_refused(mini_project: Path, mirror_keypoints) -> None:
    with pytest.raises(ValueError, match="'tongue'"):
        assemble_dataset([mini_project], mirror_keypoints, skeleton=[("nose_top", "tongue")])


def test_dlc_layout_gives_the_video_folder(tmp_path: Path) -> None:
    _need(OPENFIELD_CSV)
    video = tmp_path / "labeled-data" / "m4s1"
    video.mkdir(parents=True)
    frame = pd.read_csv(OPENFIELD_CSV, header=[0, 1, 2], index_col=0).iloc[[0, 7]]
    for image in frame.index:
        shutil.copy(OPENFIELD / Path(image).name, video)
    frame.to_csv(video / "CollectedData_Pranav.csv")
    ds = assemble_dataset([video / "CollectedData_Pranav.csv"], OPENFIELD_KEYPOINTS, split=SplitConfig(0, 0))
    assert list(ds.source_video) == ["m4s1", "m4s1"]
    assert list(ds.source_frame) == [0, 7]
    assert list(ds.split) == ["train", "train"]


def test_load_image_gives_rgb_uint8_for_grey_rgba_and_jpeg(tmp_path: Path) -> None:
    rows, cols = np.mgrid[0:16, 0:24]
    rgb = np.dstack([rows * 15, cols * 10, np.full_like(rows, 128)]).astype(np.uint8)  # smooth, so JPEG keeps it
    Image.fromarray(rgb[:, :, 0], mode="L").save(tmp_path / "grey.png")
    Image.fromarray(np.dstack([rgb, np.full((16, 24), 7, np.uint8)]), mode="RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(rgb).save(tmp_path / "rgb.jpg", quality=100)
    grey = load_image(tmp_path / "grey.png")
    assert grey.shape == (16, 24, 3) and grey.dtype == np.uint8
    np.testing.assert_array_equal(grey, np.repeat(rgb[:, :, :1], 3, axis=2))
    np.testing.assert_array_equal(load_image(tmp_path / "rgba.png"), rgb)
    jpeg = load_image(tmp_path / "rgb.jpg")
    assert jpeg.shape == (16, 24, 3) and jpeg.dtype == np.uint8
    assert np.abs(jpeg.astype(int) - rgb).max() <= 8  # lossy, but the same picture
