from __future__ import annotations

import logging
import shutil
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from posecore.errors import InputError
from posecore.io.assemble import SplitConfig, assemble_dataset, split_frames
from posecore.io.dataset import read_dataset, write_dataset
from posecore.io.label_table import load_image
from posecore.io.labels import read_labels
from posecore.io.video import read_frame_array

from ..conftest import SHARED_DATA
from .conftest import SLEAP_FRAMES

DATA = SHARED_DATA
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
    assert (ds.image_sizes == [406, 396]).all() and not ds.padded.any()
    assert np.isnan(ds.outside_xy).all()
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
def test_coordinate_outside_the_image_is_kept_apart_and_logged(
    mini_project: Path, mirror_keypoints, coord: str, value: float, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[frame.index[3], ("rick", "nose_bot", coord)] = value
        return frame

    _edit(mini_project, edit)
    labeled = read_labels(mini_project).keypoints[3, mirror_keypoints.index("nose_bot")]  # (x, y) as in the file
    with caplog.at_level(logging.WARNING, logger="posecore.io.assemble"):
        ds = assemble_dataset([mini_project], mirror_keypoints)
    k = mirror_keypoints.index("nose_bot")
    assert np.isnan(ds.keypoints[3, k]).all()
    np.testing.assert_array_equal(ds.outside_xy[3, k], labeled)
    assert int((~np.isnan(ds.outside_xy)).sum()) == 2  # that point's x and y, NaN everywhere else
    (record,) = caplog.records
    message = record.getMessage()
    assert str(mini_project) in message and "(row 3)" in message and "'nose_bot'" in message and f"{value:g}" in message
    # The HDF5 file keeps them.
    write_dataset(ds, tmp_path / "d.h5")
    np.testing.assert_array_equal(read_dataset(tmp_path / "d.h5").outside_xy, ds.outside_xy)


def test_coordinates_on_the_border_are_accepted(mini_project: Path, mirror_keypoints) -> None:
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[frame.index[0], ("rick", "nose_bot", "x")] = 395.5  # W - 0.5: edge of the last pixel
        frame.loc[frame.index[0], ("rick", "nose_bot", "y")] = -0.5
        return frame

    _edit(mini_project, edit)
    ds = assemble_dataset([mini_project], mirror_keypoints)
    np.testing.assert_array_equal(ds.keypoints[0, mirror_keypoints.index("nose_bot")], [395.5, -0.5])


def test_images_of_different_sizes_are_padded_at_the_bottom_right(
    mini_project: Path, mirror_keypoints, caplog: pytest.LogCaptureFixture
) -> None:
    _need(OPENFIELD)
    shutil.copy(OPENFIELD / "img0000.png", mini_project.parent / "labeled-data" / "img04.png")  # 640x480
    with caplog.at_level(logging.INFO, logger="posecore.io.assemble"):
        ds = assemble_dataset([mini_project], mirror_keypoints)
    assert ds.images.shape == (5, 480, 640, 3)
    assert ds.image_sizes.tolist() == [[406, 396]] * 3 + [[480, 640]] + [[406, 396]]
    assert ds.padded.tolist() == [True, True, True, False, True]
    grey = np.rint(matplotlib.image.imread(mini_project.parent / "labeled-data" / "img01.png") * 255).astype(np.uint8)
    np.testing.assert_array_equal(ds.images[0, :406, :396, 0], grey)
    assert not ds.images[0, 406:].any() and not ds.images[0, :, 396:].any()  # zeros below and to the right
    np.testing.assert_array_equal(ds.images[3], load_image(OPENFIELD / "img0000.png"))
    np.testing.assert_array_equal(ds.keypoints, read_labels(mini_project).keypoints)  # coordinates unchanged
    assert any("396x406: 4 frames, 640x480: 1 frames" in r.getMessage() for r in caplog.records)


def test_duplicate_rows_name_both(mini_project: Path, mirror_keypoints) -> None:
    _edit(mini_project, lambda frame: pd.concat([frame, frame.iloc[[1]]]))
    with pytest.raises(InputError, match="labeled twice") as caught:
        assemble_dataset([mini_project], mirror_keypoints)
    message = str(caught.value)
    assert str(mini_project) in message and "(row 5)" in message and "row 1" in message
    assert "labeled-data/img02.png" in message


def test_a_later_file_replaces_the_labels_of_the_same_image(
    mini_project: Path, mirror_keypoints, caplog: pytest.LogCaptureFixture
) -> None:
    copy = mini_project.with_name("CollectedData_copy.csv")
    _edit(mini_project, lambda frame: frame)  # the same numbers, written by pandas like the copy
    frame = pd.read_csv(mini_project, header=[0, 1, 2], index_col=0).iloc[[1, 3]] + 0.25
    frame.to_csv(copy)
    with caplog.at_level(logging.INFO, logger="posecore.io.assemble"):
        ds = assemble_dataset([mini_project, copy], mirror_keypoints)
    original = read_labels(mini_project).keypoints
    expected = original.copy()
    expected[[1, 3]] += 0.25
    np.testing.assert_allclose(ds.keypoints, expected, rtol=1e-6)  # in place: frames keep their order
    assert [r.getMessage() for r in caplog.records] == [f"2 frames of {copy} replace labels from {mini_project}"]


def test_refined_frames_from_another_folder_replace_earlier_labels(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """DeepLabCut's refinement: corrected frames of a video in another project folder, as H5."""
    _need(OPENFIELD_CSV)
    labels = pd.read_csv(OPENFIELD_CSV, header=[0, 1, 2], index_col=0)
    first = tmp_path / "project" / "labeled-data" / "m4s1"
    refine = tmp_path / "refine" / "labeled-data" / "m4s1"
    for folder, rows in ((first, [0, 1, 2, 3]), (refine, [2, 0, 5])):
        folder.mkdir(parents=True)
        for image in labels.index[rows]:
            shutil.copy(OPENFIELD / Path(image).name, folder)
    labels.iloc[[0, 1, 2, 3]].to_csv(first / "CollectedData_Pranav.csv")
    corrected = labels.iloc[[2, 0, 5]].copy()
    corrected.iloc[:2] += 1.5
    corrected.index = pd.MultiIndex.from_tuples([tuple(p.split("/")) for p in corrected.index])  # DLC >= 2.2 rows
    corrected.to_hdf(refine / "CollectedData_Pranav.h5", key="df_with_missing", mode="w")
    with caplog.at_level(logging.INFO, logger="posecore.io.assemble"):
        ds = assemble_dataset(
            [first / "CollectedData_Pranav.csv", refine / "CollectedData_Pranav.h5"],
            OPENFIELD_KEYPOINTS,
            split=SplitConfig(0, 0),
        )
    truth = read_labels(OPENFIELD_CSV).keypoints
    expected = truth[[0, 1, 2, 3, 5]].copy()
    expected[[0, 2]] += 1.5
    np.testing.assert_allclose(ds.keypoints, expected, rtol=1e-6)
    frames = [int(Path(p).stem[3:]) for p in labels.index[[0, 1, 2, 3, 5]]]
    assert list(ds.source_frame) == frames and set(ds.source_video) == {"m4s1"}
    assert [Path(p).parent for p in ds.source_path] == [refine, first, refine, first, refine]
    message = f"2 frames of {refine / 'CollectedData_Pranav.h5'} replace labels from {first}/CollectedData_Pranav.csv"
    assert [r.getMessage() for r in caplog.records] == [message]


def test_a_keypoint_labeled_nowhere_is_refused(mini_project: Path, mirror_keypoints) -> None:
    def drop(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[:, ("rick", "nose_bot", "x")] = np.nan
        frame.loc[:, ("rick", "nose_bot", "y")] = np.nan
        return frame

    _edit(mini_project, drop)
    with pytest.raises(InputError, match="keypoint 'nose_bot' is labeled in no frame") as caught:
        assemble_dataset([mini_project], mirror_keypoints)
    assert str(mini_project) in str(caught.value)


def test_sleap_frames_and_dlc_pngs_of_one_video_merge(sleap_project: Path, tmp_path: Path) -> None:
    """Frame 12 of m1.mp4 labeled in SLEAP, then corrected as labeled-data/m1/img00012.png."""
    sleap = read_labels(sleap_project)
    folder = tmp_path / "refine" / "labeled-data" / "m1"
    folder.mkdir(parents=True)
    frame = read_frame_array(sleap_project.parent / "m1.mp4", [12])[0]
    Image.fromarray(frame).save(folder / "img00012.png")
    columns = pd.MultiIndex.from_product(
        [["me"], list(sleap.keypoint_names), ["x", "y"]], names=["scorer", "bodyparts", "coords"]
    )
    row = pd.DataFrame([[1, 2, 3, 4, 5, 6]], index=["labeled-data/m1/img00012.png"], columns=columns, dtype=float)
    row.to_csv(folder / "CollectedData_me.csv")
    ds = assemble_dataset([sleap_project, folder / "CollectedData_me.csv"], sleap.keypoint_names)
    assert ds.images.shape == (4, 48, 64, 3)
    assert list(ds.source_frame) == list(SLEAP_FRAMES) and set(ds.source_video) == {"m1"}
    np.testing.assert_array_equal(ds.keypoints[2], [[1, 2], [3, 4], [5, 6]])
    np.testing.assert_array_equal(ds.images, read_frame_array(sleap_project.parent / "m1.mp4", list(SLEAP_FRAMES)))
    assert ds.source_path[2] == str(folder / "img00012.png")
    assert ds.source_path[0] == str(sleap_project.parent / "m1.mp4")


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


MONTBLANC_H5 = DATA / "madlc-montblanc" / "labeled-data" / "montblanc" / "CollectedData_Daniel.h5"
BIRD_PARTS = ("head", "tail", "leftwing", "rightwing")


@pytest.fixture
def herd(tmp_path: Path) -> Path:
    """A multi-animal DeepLabCut project: 3 images of 40x30, individuals m1..m3 and a unique 'feeder'; its CSV."""
    folder = tmp_path / "labeled-data" / "cage"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(folder / f"img{i:03d}.png")
    columns = pd.MultiIndex.from_tuples(
        [("me", m, part, c) for m in ("m1", "m2", "m3") for part in ("nose", "tail") for c in "xy"]
        + [("me", "single", "feeder", c) for c in "xy"],
        names=["scorer", "individuals", "bodyparts", "coords"],
    )
    nan = np.nan
    values = [
        [1, 2, 3, 4, nan, nan, nan, nan, 5, 6, 7, 8, 20, 20],  # m1 and m3
        [nan] * 12 + [21, 21],  # no animal
        [9, 10, nan, nan, 11, 12, 13, 14, 15, 16, 17, 18, nan, nan],  # three animals, m1's tail unlabeled
    ]
    frame = pd.DataFrame(values, index=[f"labeled-data/cage/img{i:03d}.png" for i in range(3)], columns=columns)
    path = folder / "CollectedData_me.csv"
    frame.to_csv(path)
    return path


def test_multi_animal_dataset_keeps_instances_and_tracks(herd: Path, tmp_path: Path) -> None:
    ds = assemble_dataset([herd], ("nose", "tail"), max_animals=3, unique_keypoints=("feeder",))
    assert ds.multi_animal and ds.keypoints.shape == (3, 3, 2, 2)
    assert ds.instance_counts().tolist() == [2, 0, 3]
    assert ds.tracks.tolist() == [["m1", "m3", ""], ["", "", ""], ["m1", "m2", "m3"]]
    np.testing.assert_array_equal(ds.keypoints[0, :2], [[[1, 2], [3, 4]], [[5, 6], [7, 8]]])  # packed to the front
    np.testing.assert_array_equal(ds.keypoints[2, 0], [[9, 10], [np.nan, np.nan]])
    assert np.isnan(ds.keypoints[1]).all() and np.isnan(ds.keypoints[0, 2]).all()
    np.testing.assert_array_equal(ds.unique_keypoints[:, 0], [[20, 20], [21, 21], [np.nan, np.nan]])
    write_dataset(ds, tmp_path / "herd.h5")
    back = read_dataset(tmp_path / "herd.h5")
    assert back.multi_animal and back.tracks.tolist() == ds.tracks.tolist()
    np.testing.assert_array_equal(back.keypoints, ds.keypoints)
    np.testing.assert_array_equal(back.unique_keypoints, ds.unique_keypoints)
    assert back.unique_keypoint_names == ("feeder",) and back.content_hash() == ds.content_hash()
    import h5py

    with h5py.File(tmp_path / "herd.h5") as f:
        assert f.attrs["format_version"] == 3


def test_too_many_animals_in_a_frame_name_the_file_and_image(herd: Path) -> None:
    with pytest.raises(InputError, match=r"image 'labeled-data/cage/img002.png' has 3 animals, more than") as caught:
        assemble_dataset([herd], ("nose", "tail"), max_animals=2, unique_keypoints=("feeder",))
    assert str(herd) in str(caught.value) and "(row 2)" in str(caught.value)
    with pytest.raises(InputError, match=r"set dataset\.max_animals"):
        assemble_dataset([herd], ("nose", "tail"))
    with pytest.raises(InputError, match=r"unique body parts \['feeder'\]"):
        assemble_dataset([herd], ("nose", "tail"), max_animals=3)


def test_single_animal_files_join_a_multi_animal_dataset_as_untracked_animals(
    herd: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    single = tmp_path / "single" / "CollectedData_me.csv"
    single.parent.mkdir()
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(single.parent / "img9.png")
    columns = pd.MultiIndex.from_tuples(
        [("me", p, c) for p in ("nose", "tail") for c in "xy"], names=["scorer", "bodyparts", "coords"]
    )
    pd.DataFrame([[1.0, 1.0, 50.0, 2.0]], index=["img9.png"], columns=columns).to_csv(single)  # tail x outside
    with caplog.at_level(logging.WARNING, logger="posecore.io.assemble"):
        ds = assemble_dataset([herd, single], ("nose", "tail"), max_animals=3, unique_keypoints=("feeder",))
    assert ds.tracks[3].tolist() == ["", "", ""] and ds.instance_counts()[3] == 1
    np.testing.assert_array_equal(ds.keypoints[3, 0], [[1, 1], [np.nan, np.nan]])
    np.testing.assert_array_equal(ds.outside_xy[3, 0, 1], [50, 2])
    assert int(np.isfinite(ds.outside_xy).sum()) == 2
    (record,) = caplog.records
    assert "instance 0 tail" in record.getMessage() and str(single) in record.getMessage()


def test_montblanc_birds_become_instances_with_their_names(tmp_path: Path) -> None:
    _need(MONTBLANC_H5)
    table = read_labels(MONTBLANC_H5)
    ds = assemble_dataset([MONTBLANC_H5], BIRD_PARTS, max_animals=8)
    assert ds.keypoints.shape == (42, 7, 4, 2) and ds.images.shape == (42, 1080, 1920, 3)
    assert ds.instance_counts().sum() == 164 and np.isnan(ds.outside_xy).all()
    for row in range(42):
        present = np.isfinite(table.keypoints[row]).all(-1).any(-1)
        n = int(present.sum())
        np.testing.assert_array_equal(ds.keypoints[row, :n], table.keypoints[row, present])
        assert ds.tracks[row, :n].tolist() == table.tracks[row, present].tolist()
        assert (ds.tracks[row, n:] == "").all() and np.isnan(ds.keypoints[row, n:]).all()
    np.testing.assert_array_equal(ds.images[0], load_image(MONTBLANC_H5.parent / "img0000.png"))
