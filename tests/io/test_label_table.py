from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from posecore.errors import InputError
from posecore.io.label_table import FrameRef, ImageFiles, find_image, load_image, source_video


@pytest.mark.parametrize(
    ("image", "video"),
    [
        ("project/labeled-data/m4s1/img0042.png", "m4s1"),  # DeepLabCut
        ("project/labeled-data/img01.png", "project"),  # Lightning Pose: the project stands in
        ("results/labeling/mouse-01/images/img00042.png", "mouse-01"),  # posecore's extract_frames
        ("refine/labeled-data/mouse-01/img00042.png", "mouse-01"),
    ],
)
def test_source_video_skips_storage_folders(tmp_path: Path, image: str, video: str) -> None:
    assert source_video(tmp_path / image) == video


def test_the_same_frame_in_two_folders_shares_a_key(tmp_path: Path) -> None:
    first = FrameRef(tmp_path / "a" / "labeled-data" / "m1" / "img0042.png", "m1", 42)
    refined = FrameRef(tmp_path / "refine" / "labeled-data" / "m1" / "img0042.png", "m1", 42)
    from_video = FrameRef(tmp_path / "m1.mp4", "m1", 42)
    other_frame = FrameRef(tmp_path / "m1.mp4", "m1", 43)
    assert set(first.keys()) & set(refined.keys()) & set(from_video.keys())
    assert not set(from_video.keys()) & set(other_frame.keys())
    unnumbered = [FrameRef(tmp_path / name, "v", -1) for name in ("a.png", "b.png")]
    assert not set(unnumbered[0].keys()) & set(unnumbered[1].keys())  # no frame number: only the file counts
    embedded = [FrameRef(tmp_path / "p.pkg.slp", f"p.pkg.slp/{i}", 5, f"video{i}/video") for i in (0, 1)]
    assert not set(embedded[0].keys()) & set(embedded[1].keys())
    assert embedded[0].location == f"{tmp_path / 'p.pkg.slp'}#video0/video"


def test_find_image_tries_the_roots_in_order(tmp_path: Path) -> None:
    label = tmp_path / "coco" / "keypoints.json"
    (tmp_path / "coco" / "images").mkdir(parents=True)
    (tmp_path / "coco" / "images" / "a.png").write_bytes(b"")
    assert find_image(label, "a.png", roots=(".", "images"), by_name=False) == tmp_path / "coco" / "images" / "a.png"
    (tmp_path / "coco" / "a.png").write_bytes(b"")
    assert find_image(label, "a.png", roots=(".", "images"), by_name=False) == tmp_path / "coco" / "a.png"
    with pytest.raises(InputError, match="not found") as caught:
        find_image(label, "b.png", roots=(".", "images"), by_name=False, row=4)
    assert str(label) in str(caught.value) and "(row 4)" in str(caught.value)


def test_image_files_refuse_an_unreadable_image_naming_the_row(tmp_path: Path) -> None:
    label = tmp_path / "CollectedData.csv"
    (tmp_path / "img0.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="cannot read image") as caught:
        ImageFiles(label, ("img0.png",)).load([0])
    assert str(label) in str(caught.value) and "(row 0)" in str(caught.value)


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
