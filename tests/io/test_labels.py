from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from posecore.errors import InputError
from posecore.io.labels import READERS, frame_index, read_dlc_csv, read_dlc_h5, read_labels, resolve_image

from ..conftest import SHARED_DATA

DATA = SHARED_DATA
MONTBLANC = DATA / "madlc-montblanc" / "labeled-data" / "montblanc"
OPENFIELD = DATA / "dlc-openfield" / "labeled-data" / "m4s1"
OPENFIELD_CSV = OPENFIELD / "CollectedData_Pranav.csv"
OPENFIELD_H5 = OPENFIELD / "CollectedData_Pranav.h5"
MIRROR_CSV = DATA / "lp-mirror-mouse" / "CollectedData.csv"


@pytest.fixture(scope="module")
def openfield_frame() -> pd.DataFrame:
    if not OPENFIELD_CSV.exists():
        pytest.skip(f"{OPENFIELD_CSV} is absent")
    return pd.read_csv(OPENFIELD_CSV, header=[0, 1, 2], index_col=0)


@pytest.fixture
def multiindex_frame(openfield_frame: pd.DataFrame) -> pd.DataFrame:
    """The openfield labels with DLC >= 2.2's row index (labeled-data, video, image)."""
    frame = openfield_frame.copy()
    frame.index = pd.MultiIndex.from_tuples([tuple(p.split("/")) for p in frame.index])
    return frame


def test_openfield_csv_reads_the_published_numbers(openfield_frame: pd.DataFrame) -> None:
    table = read_labels(OPENFIELD_CSV)
    assert table.keypoint_names == ("snout", "leftear", "rightear", "tailbase")
    assert table.scorer == "Pranav"
    assert table.keypoints.dtype == np.float32
    assert table.keypoints.shape == (116, 4, 2)
    assert not np.isnan(table.keypoints).any()
    assert table.image_paths[0] == "labeled-data/m4s1/img0000.png"
    # First row of the file: snout (21.521, 265.428), tailbase (87.11, 152.698).
    np.testing.assert_allclose(table.keypoints[0, 0], [21.521, 265.428], rtol=1e-6)
    np.testing.assert_allclose(table.keypoints[0, 3], [87.11, 152.698], rtol=1e-6)
    np.testing.assert_allclose(table.keypoints.reshape(116, 8), openfield_frame.to_numpy(), rtol=1e-6)


def test_openfield_h5_gives_the_same_numbers_as_the_csv() -> None:
    if not OPENFIELD_H5.exists():
        pytest.skip(f"{OPENFIELD_H5} is absent")
    from_csv, from_h5 = read_labels(OPENFIELD_CSV), read_labels(OPENFIELD_H5)
    assert from_h5.image_paths == from_csv.image_paths
    assert from_h5.keypoint_names == from_csv.keypoint_names
    np.testing.assert_array_equal(from_h5.keypoints, from_csv.keypoints)


def test_h5_with_multiindex_rows_matches_the_csv(multiindex_frame: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "CollectedData_Pranav.h5"
    multiindex_frame.to_hdf(path, key="df_with_missing", mode="w")
    table = read_dlc_h5(path)
    reference = read_dlc_csv(OPENFIELD_CSV)
    assert table.image_paths == reference.image_paths
    np.testing.assert_array_equal(table.keypoints, reference.keypoints)


def test_csv_with_three_index_columns_matches_the_old_layout(multiindex_frame: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "CollectedData_Pranav.csv"
    multiindex_frame.to_csv(path)
    assert path.read_text().startswith("scorer,,,Pranav")
    table = read_labels(path)
    reference = read_dlc_csv(OPENFIELD_CSV)
    assert table.image_paths == reference.image_paths
    np.testing.assert_array_equal(table.keypoints, reference.keypoints)


def test_mirror_mouse_keeps_missing_labels_as_nan() -> None:
    if not MIRROR_CSV.exists():
        pytest.skip(f"{MIRROR_CSV} is absent")
    table = read_labels(MIRROR_CSV)
    assert table.keypoints.shape == (90, 17, 2)
    assert len(table.keypoint_names) == 17
    assert int(np.isnan(table.keypoints).sum()) == 268
    # Row 0 (img01): tailBase_top has no label, nose_top is at (390.75, 24.25).
    names = table.keypoint_names
    assert np.isnan(table.keypoints[0, names.index("tailBase_top")]).all()
    np.testing.assert_array_equal(table.keypoints[0, names.index("nose_top")], [390.75, 24.25])


def test_a_file_without_a_suffix_is_an_unknown_format_listing_the_known_ones(tmp_path: Path) -> None:
    path = tmp_path / "labels"
    path.write_text("{}")
    with pytest.raises(InputError) as caught:
        read_labels(path)
    assert str(caught.value) == (
        f"{path}: unknown label format '(no suffix)'; known formats: .csv (read_dlc_csv), .h5 (read_dlc_h5), "
        ".hdf5 (read_dlc_h5), .slp (read_slp), .json (read_coco)"
    )


def test_unknown_format_lists_the_known_ones(tmp_path: Path) -> None:
    path = tmp_path / "labels.txt"
    path.write_text("{}")
    with pytest.raises(InputError, match="unknown label format") as caught:
        read_labels(path)
    assert str(path) in str(caught.value)
    for suffix in READERS:
        assert suffix in str(caught.value)


def test_non_numeric_value_names_the_row_and_column(tmp_path: Path) -> None:
    if not OPENFIELD_CSV.exists():
        pytest.skip(f"{OPENFIELD_CSV} is absent")
    lines = OPENFIELD_CSV.read_text().splitlines()
    cells = lines[3 + 5].split(",")
    cells[3] = "oops"  # row 5, leftear x
    lines[3 + 5] = ",".join(cells)
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as caught:
        read_labels(path)
    message = str(caught.value)
    assert str(path) in message and "row 5" in message and "leftear x" in message and "'oops'" in message


HEAD = "scorer,a,a\nbodyparts,snout,snout\ncoords,x,y\n"


@pytest.mark.parametrize(
    ("content", "where", "expected"),
    [
        (" \n", "", "the label file is empty"),
        (HEAD, "", "the label file has a header but no labeled rows"),
        (
            "image,x,y\nimg0.png,1,2\nimg1.png,3,4\nimg2.png,5,6\n",
            "header",
            "expected DeepLabCut header rows scorer, bodyparts, coords (or scorer, individuals, bodyparts, coords); "
            "the first column reads "
            "['image', 'img0.png', 'img1.png']",
        ),
        (
            "image,x,y\n\nimg0.png,1,2\n",
            "header",
            "expected DeepLabCut header rows scorer, bodyparts, coords (or scorer, individuals, bodyparts, coords); "
            "the first column reads "
            "['image', '', 'img0.png']",
        ),
        (
            "scorer,a,a,a\nbodyparts,snout,snout,snout\ncoords,x,y,likelihood\nimg0.png,1,2,0.9\n",
            "header",
            "coords must be x and y, found ['likelihood'] (a predictions file?)",
        ),
        (
            "scorer,a,b\nbodyparts,snout,snout\ncoords,x,y\nimg0.png,1,2\n",
            "header",
            "expected one scorer, found ['a', 'b']",
        ),
        (
            "scorer,a,a\nbodyparts,snout,tail\ncoords,x,y\nimg0.png,1,2\n",
            "header",
            "keypoint 'snout' has no 'y' columns",
        ),
        (HEAD + "img0.png,1,2\nimg1.png,3,inf\n", "row 1", "snout y is infinite"),
        (HEAD + "img0.png,1,2\nimg1.png,-inf,4\n", "row 1", "snout x is infinite"),
    ],
)
def test_malformed_csv_is_refused_naming_the_file(tmp_path: Path, content: str, where: str, expected: str) -> None:
    path = tmp_path / "CollectedData.csv"
    path.write_text(content)
    with pytest.raises(InputError) as caught:
        read_labels(path)
    assert str(caught.value) == f"{path}{f' ({where})' if where else ''}: {expected}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("scorer,a,a\nindividuals,m1,m1\nbodyparts,snout,snout\ncoords,x,y\n", "no labeled rows"),
        (
            "scorer,a,a,a,a\nindividuals,m1,m1,m1,m1\nbodyparts,snout,snout,snout,snout\ncoords,x,y,x,y\n"
            "img0.png,1,2,3,4\n",
            "individual 'm1' keypoint 'snout' appears twice in the header",
        ),
        (
            "scorer,a,a,a,a\nindividuals,m1,m1,m2,m2\nbodyparts,snout,snout,tail,tail\ncoords,x,y,x,y\n"
            "img0.png,1,2,3,4\n",
            "individual 'm2' has body parts \\['tail'\\]",
        ),
        (
            "scorer,a,a\nindividuals,m1,m1\nbodyparts,snout,snout\ncoords,x,y\nimg0.png,1,oops\n",
            "m1 snout y is 'oops', not a number",
        ),
    ],
)
def test_malformed_multi_animal_csv_is_refused_naming_the_file(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "CollectedData.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=expected) as caught:
        read_labels(path)
    assert str(path) in str(caught.value)


def test_an_unclosed_quote_is_named_as_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "CollectedData.csv"
    path.write_text(HEAD + 'img0.png,1,2\nimg1.png,"3,4\n')
    with pytest.raises(InputError) as caught:
        read_labels(path)
    assert str(caught.value).startswith(f"{path}: not a readable DeepLabCut label CSV (Error tokenizing data")


def test_index_columns_are_joined_into_the_image_path_and_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    two = tmp_path / "two.csv"
    two.write_text("scorer,,a,a\nbodyparts,,snout,snout\ncoords,,x,y\nm4s1,img0003.png,1.5,2\n", encoding="utf-8-sig")
    table = read_labels(two)
    assert table.image_paths == ("m4s1/img0003.png",) and table.keypoints.tolist() == [[[1.5, 2.0]]]
    assert table.path == two and table.scorer == "a" and table.keypoint_names == ("snout",)
    three = tmp_path / "three.csv"
    three.write_text("scorer,,,a,a\nbodyparts,,,snout,snout\ncoords,,,x,y\nlabeled-data,,img01.png,1,2\n")
    assert read_labels(three).image_paths == ("labeled-data/img01.png",)  # a blank part is left out


def test_images_load_through_the_table(tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "labeled-data" / "v1"
    folder.mkdir(parents=True)
    pixels = np.random.default_rng(0).integers(0, 255, (6, 8, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / "img0001.png")
    (folder / "CollectedData_a.csv").write_text(HEAD + "labeled-data/v1/img0001.png,1,2\n")
    table = read_labels(folder / "CollectedData_a.csv")
    np.testing.assert_array_equal(table.images.load([0])[0], pixels)
    assert table.images.locate(0).path == folder / "img0001.png" and table.images.locate(0).frame == 1


def _h5(path: Path, **tables: object) -> Path:
    with pd.HDFStore(path, mode="w") as store:
        for key, value in tables.items():
            store.put(key, value, track_times=False)
    return path


def _labels(scorers=("a", "a")) -> pd.DataFrame:
    columns = pd.MultiIndex.from_tuples([(scorers[0], "snout", "x"), (scorers[1], "snout", "y")])
    return pd.DataFrame([[1.0, 2.0]], index=["img0.png"], columns=columns)


def test_h5_tables_are_found_by_deeplabcuts_key_or_alone(tmp_path: Path) -> None:
    assert read_labels(_h5(tmp_path / "only.h5", other=_labels())).keypoints.tolist() == [[[1.0, 2.0]]]
    both = _h5(tmp_path / "both.h5", first=_labels().mul(10), df_with_missing=_labels())
    assert read_labels(both).keypoints.tolist() == [[[1.0, 2.0]]]
    refusals = {
        _h5(tmp_path / "several.h5", first=_labels(), second=_labels()): (
            "several tables (first, second) and none is named 'df_with_missing'"
        ),
        _h5(tmp_path / "series.h5", df_with_missing=pd.Series([1.0, 2.0])): (
            "expected a DeepLabCut label table, found a Series"
        ),
        _h5(tmp_path / "empty.h5"): "the label file holds no pandas table",
        _h5(tmp_path / "levels.h5", df_with_missing=_labels().droplevel(0, axis=1)): (
            "expected 3 column levels (scorer, bodyparts, coords), got 2"
        ),
    }
    for path, message in refusals.items():
        with pytest.raises(InputError) as caught:
            read_labels(path)
        assert str(caught.value) == f"{path}: {message}"
    with pytest.raises(InputError) as caught:
        read_labels(_h5(tmp_path / "scorers.h5", df_with_missing=_labels(("a", "b"))))
    assert str(caught.value) == f"{tmp_path / 'scorers.h5'} (header): expected one scorer, found ['a', 'b']"
    # Keypoint 1 and keypoint "1" are one name in the file: its x twice.
    columns = pd.MultiIndex.from_tuples([("a", 1, "x"), ("a", "1", "x"), ("a", 1, "y")])
    twice = _h5(tmp_path / "twice.h5", df_with_missing=pd.DataFrame([[1.0, 2.0, 3.0]], index=["i"], columns=columns))
    with pytest.raises(InputError) as caught:
        read_labels(twice)
    assert str(caught.value) == f"{twice} (header): keypoint '1' has 2 'x' columns"


def test_missing_and_corrupt_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_labels(tmp_path / "absent.csv")
    corrupt = tmp_path / "CollectedData.h5"
    corrupt.write_bytes(b"this is not HDF5" * 10)
    with pytest.raises(InputError) as caught:
        read_labels(corrupt)
    assert str(caught.value) == f"{corrupt}: not a readable pandas HDF5 label file (no HDF5 signature)"
    truncated = tmp_path / "truncated" / "CollectedData.h5"  # an HDF5 signature, then the file breaks off
    truncated.parent.mkdir()
    pd.DataFrame({"a": [1.0]}).to_hdf(truncated, key="df_with_missing", format="table")
    truncated.write_bytes(truncated.read_bytes()[:2048])
    with pytest.raises(InputError) as caught:
        read_labels(truncated)
    assert str(caught.value).startswith(f"{truncated}: not a readable pandas HDF5 label file (")
    binary = tmp_path / "CollectedData.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    with pytest.raises(InputError, match="not a readable DeepLabCut label CSV") as caught:
        read_labels(binary)
    assert str(binary) in str(caught.value)


def test_resolve_image_finds_dlc_and_lightning_pose_layouts(tmp_path: Path) -> None:
    # DLC: project/labeled-data/<video>/CollectedData.csv, paths relative to the project.
    video = tmp_path / "project" / "labeled-data" / "m4s1"
    video.mkdir(parents=True)
    (video / "img0001.png").write_bytes(b"")
    label = video / "CollectedData.csv"
    assert resolve_image(label, "labeled-data/m4s1/img0001.png") == video / "img0001.png"
    assert resolve_image(label, "labeled-data\\m4s1\\img0001.png") == video / "img0001.png"  # Windows-written
    # Lightning Pose: project/CollectedData.csv beside labeled-data/.
    root_label = tmp_path / "project" / "CollectedData.csv"
    (tmp_path / "project" / "labeled-data" / "img01.png").write_bytes(b"")
    assert resolve_image(root_label, "labeled-data/img01.png") == tmp_path / "project" / "labeled-data" / "img01.png"


def test_resolve_image_names_the_label_file_and_row(tmp_path: Path) -> None:
    label = tmp_path / "CollectedData.csv"
    with pytest.raises(InputError) as caught:
        resolve_image(label, "labeled-data/v/img0007.png", row=7)
    message = str(caught.value)
    assert str(label) in message and "row 7" in message and "labeled-data/v/img0007.png" in message


def test_real_images_resolve(tmp_path: Path) -> None:
    if not MIRROR_CSV.exists() or not OPENFIELD_CSV.exists():
        pytest.skip("shared data is absent")
    for path in (OPENFIELD_CSV, MIRROR_CSV):
        table = read_labels(path)
        assert all(resolve_image(path, image).is_file() for image in table.image_paths)
    # A copy of the label file elsewhere no longer finds its images.
    moved = tmp_path / "CollectedData.csv"
    shutil.copy(MIRROR_CSV, moved)
    with pytest.raises(InputError, match="row 0"):
        resolve_image(moved, read_labels(moved).image_paths[0], row=0)


def test_frame_index_parses_dlc_image_names() -> None:
    assert frame_index("labeled-data/m4s1/img0042.png") == 42
    assert frame_index("labeled-data/img01.png") == 1
    assert frame_index("labeled-data/v/frame_7.png") == -1


def test_sleap_and_coco_suffixes_have_readers() -> None:
    assert READERS[".slp"].__name__ == "read_slp"
    assert READERS[".json"].__name__ == "read_coco"


def test_multi_animal_dlc_csv_and_h5_read_the_published_birds() -> None:
    csv_path, h5_path = MONTBLANC / "CollectedData_Daniel.csv", MONTBLANC / "CollectedData_Daniel.h5"
    if not csv_path.exists():
        pytest.skip(f"{csv_path} is absent")
    frame = pd.read_csv(csv_path, header=[0, 1, 2, 3], index_col=0)
    table = read_labels(csv_path)
    assert table.multi_animal and table.keypoints.shape == (42, 8, 4, 2)
    assert table.keypoint_names == ("head", "tail", "leftwing", "rightwing")
    assert table.scorer == "Daniel" and table.unique_names == () and table.unique_keypoints is None
    np.testing.assert_allclose(table.keypoints.reshape(42, -1), frame.to_numpy(), rtol=1e-6)
    # The data README: 0 to 7 birds a frame, 164 in all; an individual without labels is no bird.
    counts = table.instance_counts()
    assert counts.sum() == 164 and counts.min() == 0 and counts.max() == 7
    present = np.isfinite(table.keypoints).all(-1).any(-1)  # (N, I)
    names = np.array([f"bird{i + 1}" for i in range(8)], dtype=object)
    assert (table.tracks == np.where(present, names, "")).all()
    from_h5 = read_labels(h5_path)
    assert from_h5.image_paths == table.image_paths
    np.testing.assert_array_equal(from_h5.keypoints, table.keypoints)
    np.testing.assert_array_equal(from_h5.tracks, table.tracks)


def test_multi_animal_dlc_unique_body_parts_are_kept_apart(tmp_path: Path) -> None:
    columns = pd.MultiIndex.from_tuples(
        [("me", ind, part, c) for ind, parts in (("m1", ("snout", "tail")), ("m2", ("snout", "tail")),
                                                   ("single", ("feeder",))) for part in parts for c in "xy"],
        names=["scorer", "individuals", "bodyparts", "coords"],
    )  # fmt: skip
    values = np.array(
        [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [11, 12, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, 19, 20]]
    )
    written = pd.DataFrame(values, index=["labeled-data/v/img001.png", "labeled-data/v/img002.png"], columns=columns)
    path = tmp_path / "CollectedData_me.h5"
    written.to_hdf(path, key="df_with_missing", mode="w")
    for table in (read_labels(path), read_labels(_as_csv(written, tmp_path))):
        assert table.keypoint_names == ("snout", "tail") and table.unique_names == ("feeder",)
        np.testing.assert_array_equal(table.keypoints[0], [[[1, 2], [3, 4]], [[5, 6], [7, 8]]])
        np.testing.assert_array_equal(table.keypoints[1, 0], [[11, 12], [np.nan, np.nan]])
        assert np.isnan(table.keypoints[1, 1]).all() and table.tracks.tolist() == [["m1", "m2"], ["m1", ""]]
        np.testing.assert_array_equal(table.unique_keypoints[:, 0], [[9, 10], [19, 20]])


def _as_csv(frame: pd.DataFrame, folder: Path) -> Path:
    path = folder / "CollectedData_me.csv"
    frame.to_csv(path)
    return path
