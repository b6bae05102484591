from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from posecore.errors import InputError
from posecore.io.coco_labels import read_coco
from posecore.io.labels import read_labels
from posecore.io.video import read_frame_array

from .conftest import SLEAP_FRAMES, SLEAP_NODES

NAMES = ["nose", "left_ear", "right_ear"]


def _coco(folder: Path) -> dict:
    """Three 40x30 images in images/, two labeled, plus an object of another category."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(folder / "images" / f"img{i:04d}.png")
    return {
        "images": [{"id": 10 + i, "file_name": f"img{i:04d}.png", "width": 40, "height": 30} for i in range(3)],
        "annotations": [
            {"id": 1, "image_id": 12, "category_id": 1, "keypoints": [1, 2, 2, 3.5, 4.25, 1, 0, 0, 0], "iscrowd": 0},
            {"id": 2, "image_id": 10, "category_id": 1, "keypoints": [0, 0, 2, 39, 29, 2, 20, 10, 2], "iscrowd": 0},
            {"id": 3, "image_id": 10, "category_id": 2, "bbox": [0, 0, 5, 5], "area": 25, "iscrowd": 0},
            {"id": 4, "image_id": 11, "category_id": 1, "keypoints": [0, 0, 0] * 3, "iscrowd": 0},  # labels nothing
        ],
        "categories": [
            {"id": 1, "name": "mouse", "keypoints": NAMES, "skeleton": [[1, 2], [1, 3]]},
            {"id": 2, "name": "feeder"},
        ],
    }


def _write(folder: Path, data: dict, name: str = "keypoints.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(data))
    return path


def test_coco_file_agrees_with_pycocotools(tmp_path: Path) -> None:
    coco_api = pytest.importorskip("pycocotools.coco")
    path = _write(tmp_path, _coco(tmp_path))
    table = read_labels(path)
    assert table.keypoint_names == tuple(NAMES)
    assert table.image_paths == ("img0000.png", "img0002.png")  # the order of "images"; img0001 labels nothing
    coco = coco_api.COCO(str(path))
    for row, image_id in enumerate((10, 12)):
        (annotation,) = coco.loadAnns(coco.getAnnIds(imgIds=[image_id], catIds=coco.getCatIds(catNms=["mouse"])))
        triples = np.array(annotation["keypoints"], dtype=float).reshape(-1, 3)  # (K, 3) (x, y, v)
        expected = np.where(triples[:, 2:] > 0, triples[:, :2], np.nan)  # v = 0: not labeled
        np.testing.assert_array_equal(table.keypoints[row], expected)
    # COCO keypoints are pixel indices (centre of the top-left pixel at (0, 0)), like posecore's: no shift.
    np.testing.assert_array_equal(table.keypoints[0, :2], [[0, 0], [39, 29]])


def test_images_are_found_in_the_images_folder_and_loaded(tmp_path: Path) -> None:
    path = _write(tmp_path, _coco(tmp_path))
    table = read_coco(path)
    ref = table.images.locate(1)
    assert ref.path == tmp_path / "images" / "img0002.png" and ref.frame == 2
    (image,) = table.images.load([1])
    np.testing.assert_array_equal(image, np.asarray(Image.open(tmp_path / "images" / "img0002.png")))


def test_categories_that_name_the_same_keypoints_are_read_together(tmp_path: Path) -> None:
    # A second animal category with the same keypoints (a juvenile mouse, say): its annotations
    # are labels of the same keypoints, not a file to refuse.
    data = _coco(tmp_path)
    data["categories"].append({"id": 3, "name": "juvenile", "keypoints": list(NAMES)})
    data["annotations"][3] = {"id": 4, "image_id": 11, "category_id": 3, "keypoints": [5, 6, 2, 0, 0, 0, 7, 8, 2]}
    table = read_coco(_write(tmp_path, data))
    assert table.image_paths == ("img0000.png", "img0001.png", "img0002.png")
    np.testing.assert_array_equal(table.keypoints[1], [[5, 6], [np.nan, np.nan], [7, 8]])


def test_coco_written_by_sleap_io_reads_the_sleap_numbers(
    tmp_path: Path, sleap_project: Path, sleap_points: np.ndarray
) -> None:
    sio = pytest.importorskip("sleap_io")
    labels = sio.load_slp(str(sleap_project))
    labels.labeled_frames = [frame for frame in labels.labeled_frames if frame.user_instances]
    for frame in labels.labeled_frames:
        frame.instances = frame.user_instances
    names = [f"m1_{frame.frame_idx:05d}.png" for frame in labels.labeled_frames]
    frames = read_frame_array(sleap_project.parent / "m1.mp4", list(SLEAP_FRAMES))
    for name, frame in zip(names, frames, strict=True):
        Image.fromarray(frame).save(tmp_path / name)
    path = tmp_path / "from_sleap.json"
    sio.save_coco(labels, str(path), image_filenames=names)
    table = read_labels(path)
    assert table.keypoint_names == SLEAP_NODES
    np.testing.assert_allclose(table.keypoints, sleap_points, rtol=1e-6)
    np.testing.assert_array_equal(np.stack(table.images.load(range(len(table)))), frames)


@pytest.mark.parametrize(
    ("edit", "where", "expected"),
    [
        (
            lambda d: d["categories"].append({"id": 3, "name": "rat", "keypoints": ["a", "b", "c"]}),
            "",
            "categories 'mouse' and 'rat' name different keypoints: ['nose', 'left_ear', 'right_ear'] and "
            "['a', 'b', 'c']",
        ),
        (
            lambda d: d["annotations"][0].update(keypoints=[1, 2, 2]),
            "annotations[0]",
            "'keypoints' must hold 3 numbers (x, y, v) per keypoint, 9 in all; got 3",
        ),
        (
            lambda d: d["annotations"][0].update(keypoints="1 2 2"),
            "annotations[0]",
            "'keypoints' must hold 3 numbers (x, y, v) per keypoint, 9 in all; got str",
        ),
        (
            lambda d: d["annotations"][0].update(keypoints=[1, "x", 2] * 3),
            "annotations[0]",
            "keypoints[1] is 'x', not a finite number",
        ),
        (
            lambda d: d["annotations"][0].update(keypoints=[1, 2, 2] * 2 + [float("inf"), 1, 2]),
            "annotations[0]",
            "keypoints[6] is inf, not a finite number",
        ),
        (lambda d: d["annotations"][0].update(image_id=99), "annotations[0]", "image_id 99 is not in 'images'"),
        (
            lambda d: d.update(categories=[{"id": 1, "name": "mouse"}]),
            "",
            "no category has 'keypoints' (a COCO detection file, not a keypoint file?)",
        ),
        (lambda d: d.pop("categories"), "", "not a COCO keypoint file: expected a list 'categories'"),
        (lambda d: d["categories"][0].update(keypoints=["a", "a", "b"]), "", "keypoint names repeat: ['a', 'a', 'b']"),
        (lambda d: d.pop("images"), "", "not a COCO keypoint file: expected lists 'images' and 'annotations'"),
        (lambda d: d["images"][1].pop("file_name"), "images[1]", "an image needs an 'id' and a 'file_name'"),
        (lambda d: d["images"][1].pop("id"), "images[1]", "an image needs an 'id' and a 'file_name'"),
        (lambda d: d["annotations"][1].update(keypoints=[0] * 9), "", "no annotation labels a keypoint"),
    ],
)
def test_malformed_coco_is_refused_naming_the_file(tmp_path: Path, edit: Callable, where: str, expected: str) -> None:
    data = _coco(tmp_path)
    if "no annotation" in expected:
        data["annotations"][0]["keypoints"] = [0] * 9
    edit(data)
    path = _write(tmp_path, data)
    with pytest.raises(InputError) as caught:
        read_labels(path)
    assert str(caught.value) == f"{path}{f' ({where})' if where else ''}: {expected}"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["annotations"].append({**d["annotations"][1], "id": 9, "track_id": 4}), "labels no keypoint"),
        (
            lambda d: d["annotations"].extend([{**d["annotations"][1], "id": n, "track_id": 7} for n in (8, 9)]),
            r"track_id '7' is on two annotations of image 'img0000.png' \(id 10\)",
        ),
    ],
)
def test_malformed_annotations_of_several_animals_are_refused_naming_the_file(
    tmp_path: Path, edit: Callable, expected: str
) -> None:
    data = _coco(tmp_path)
    edit(data)
    path = _write(tmp_path, data)
    with pytest.raises(InputError, match=expected) as caught:
        read_labels(path)
    assert str(path) in str(caught.value)


def test_the_table_is_the_files_float32_and_an_excel_saved_file_reads(tmp_path: Path) -> None:
    path = tmp_path / "keypoints.json"
    path.write_text(json.dumps(_coco(tmp_path)), encoding="utf-8-sig")  # with a byte-order mark
    table = read_labels(path)
    assert table.path == path and table.scorer == "" and table.keypoints.dtype == np.float32
    assert table.image_paths == ("img0000.png", "img0002.png")


def test_declared_sizes_of_0_are_unknown_and_others_are_checked(tmp_path: Path) -> None:
    data = _coco(tmp_path)
    data["images"][0].update(width=0, height=30)  # sleap-io writes 0 when it does not know
    data["images"][2].update(width=40, height=0)
    table = read_coco(_write(tmp_path, data))
    assert [image.shape for image in table.images.load([0, 1])] == [(30, 40, 3)] * 2
    data["images"][0].update(width=1, height=1)
    with pytest.raises(InputError, match=r"40x30 \(WxH\) but the label file says 1x1"):
        read_coco(_write(tmp_path, data)).images.load([0])


def test_a_file_name_in_a_folder_is_not_looked_for_by_its_bare_name(tmp_path: Path) -> None:
    data = _coco(tmp_path)
    shutil.move(tmp_path / "images" / "img0000.png", tmp_path / "img0000.png")
    data["images"][0]["file_name"] = "frames/img0000.png"
    table = read_coco(_write(tmp_path, data))
    with pytest.raises(InputError, match=r"'frames/img0000\.png' not found"):
        table.images.locate(0)


def test_two_annotations_on_an_image_read_as_a_multi_animal_table(tmp_path: Path) -> None:
    data = _coco(tmp_path)
    data["annotations"] = [a for a in data["annotations"] if a["id"] != 4]  # every v = 0: refused in multi-animal files
    data["annotations"].append({"id": 7, "image_id": 12, "category_id": 1, "keypoints": [5, 6, 2, 0, 0, 0, 7, 8, 1]})
    data["annotations"][1]["track_id"] = "b"
    data["annotations"][-1]["track_id"] = 3
    table = read_coco(_write(tmp_path, data))
    assert table.multi_animal and table.keypoints.shape == (2, 2, 3, 2)
    np.testing.assert_array_equal(table.keypoints[0, 0], [[0, 0], [39, 29], [20, 10]])
    np.testing.assert_array_equal(table.keypoints[1, 0], [[1, 2], [3.5, 4.25], [np.nan, np.nan]])
    np.testing.assert_array_equal(table.keypoints[1, 1], [[5, 6], [np.nan, np.nan], [7, 8]])
    assert np.isnan(table.keypoints[0, 1]).all()
    assert table.tracks.tolist() == [["b", ""], ["", "3"]]


def test_missing_image_and_wrong_size_name_the_row(tmp_path: Path) -> None:
    data = _coco(tmp_path)
    data["images"][2]["height"] = 31
    path = _write(tmp_path, data)
    table = read_coco(path)
    with pytest.raises(InputError, match="40x30 \\(WxH\\) but the label file says 40x31") as caught:
        table.images.load([1])
    assert str(path) in str(caught.value) and "(row 1)" in str(caught.value)
    shutil.rmtree(tmp_path / "images")
    with pytest.raises(InputError, match=r"'img0000\.png' not found") as caught:
        table.images.locate(0)
    assert str(path) in str(caught.value) and "(row 0)" in str(caught.value)


def test_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "labels.json"
    path.write_text("{ not json")
    with pytest.raises(InputError, match="not a readable COCO JSON file") as caught:
        read_labels(path)
    assert str(path) in str(caught.value)
