from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

from posecore.errors import InputError
from posecore.io.labels import read_labels
from posecore.io.sleap_labels import read_slp
from posecore.io.video import read_frame_array

from .conftest import SLEAP_FRAMES, SLEAP_NODES

sio = pytest.importorskip("sleap_io")


def test_slp_written_by_sleap_io_reads_back_its_user_labels(sleap_project: Path, sleap_points: np.ndarray) -> None:
    table = read_labels(sleap_project)
    assert table.keypoint_names == SLEAP_NODES
    assert table.keypoints.dtype == np.float32
    # SLEAP (format >= 1.1) and posecore share the pixel convention: the numbers are the ones written.
    np.testing.assert_allclose(table.keypoints, sleap_points, rtol=1e-6)  # hidden point and NaNs stay NaN
    assert table.image_paths == tuple(f"m1 frame {frame}" for frame in SLEAP_FRAMES)  # frame 20: predictions only
    refs = [table.images.locate(row) for row in range(len(table))]
    assert [ref.frame for ref in refs] == list(SLEAP_FRAMES)
    assert {ref.video for ref in refs} == {"m1"}
    assert {ref.path for ref in refs} == {sleap_project.parent / "m1.mp4"}


def test_frames_are_decoded_exactly(sleap_project: Path) -> None:
    table = read_slp(sleap_project)
    rows = [3, 0, 2]  # any order
    images = table.images.load(rows)
    expected = read_frame_array(sleap_project.parent / "m1.mp4", sorted(SLEAP_FRAMES[r] for r in rows))
    by_frame = dict(zip(sorted(SLEAP_FRAMES[r] for r in rows), expected, strict=True))
    for row, image in zip(rows, images, strict=True):
        assert image.shape == (48, 64, 3) and image.dtype == np.uint8
        np.testing.assert_array_equal(image, by_frame[SLEAP_FRAMES[row]])


def test_package_with_embedded_frames_matches_the_video(
    tmp_path: Path, label_video: Path, write_sleap: Callable[..., Path], sleap_points: np.ndarray
) -> None:
    video = tmp_path / "source" / "m1.mp4"
    video.parent.mkdir()
    shutil.copy(label_video, video)
    package = write_sleap(tmp_path, video, embed=True, name="labels.pkg.slp")
    video.unlink()  # a package needs no video
    table = read_labels(package)
    np.testing.assert_allclose(table.keypoints, sleap_points, rtol=1e-6)
    ref = table.images.locate(1)
    assert (ref.path, ref.video, ref.frame) == (package, "m1", 11) and ref.member.endswith("/video")
    images = table.images.load(list(range(len(table))))
    # The same pixels as sleap-io's own reading of the package, and as posecore's decode of the video.
    labels = sio.load_slp(str(package))
    for frame, image in zip(SLEAP_FRAMES, images, strict=True):
        np.testing.assert_array_equal(image, np.asarray(labels.video[frame]))
    np.testing.assert_array_equal(np.stack(images), read_frame_array(label_video, list(SLEAP_FRAMES)))


def test_video_moved_beside_the_label_file_is_found(
    tmp_path: Path, label_video: Path, write_sleap: Callable[..., Path]
) -> None:
    elsewhere = tmp_path / "lab-computer" / "m1.mp4"
    elsewhere.parent.mkdir()
    shutil.copy(label_video, elsewhere)
    project = tmp_path / "project"
    project.mkdir()
    path = write_sleap(project, elsewhere)
    shutil.move(elsewhere, project / "m1.mp4")  # the file still names the old place
    assert read_slp(path).images.locate(0).path == project / "m1.mp4"


def test_missing_video_names_the_label_file_row_and_places(sleap_project: Path, tmp_path: Path) -> None:
    moved = tmp_path / "moved"
    moved.mkdir()
    shutil.copy(sleap_project, moved / "labels.slp")
    (sleap_project.parent / "m1.mp4").unlink()
    table = read_slp(moved / "labels.slp")
    with pytest.raises(InputError, match=r"video '.*m1\.mp4' not found") as caught:
        table.images.locate(2)
    message = str(caught.value)
    assert str(moved / "labels.slp") in message and "(row 2)" in message and str(moved / "m1.mp4") in message


def _relabel(path: Path, edit: Callable) -> Path:
    labels = sio.load_slp(str(path), open_videos=False)
    edit(labels)
    out = path.with_name("edited.slp")
    sio.save_slp(labels, str(out), verbose=False)
    return out


def _add_animal(frame: int, xy: np.ndarray, track: str = "", first_track: str = "") -> Callable:
    """An edit adding a user instance on labeled frame `frame` (tracks on it and on the one already there)."""

    def edit(labels) -> None:
        tracks = {name: sio.Track(name) for name in {track, first_track} if name}
        labels.tracks.extend(tracks.values())
        labeled = labels.labeled_frames[frame]
        if first_track:
            labeled.user_instances[0].track = tracks[first_track]
        labeled.instances.append(sio.Instance.from_numpy(xy, skeleton=labels.skeleton, track=tracks.get(track)))

    return edit


def test_two_user_instances_on_a_frame_read_as_a_multi_animal_table(
    sleap_project: Path, sleap_points: np.ndarray
) -> None:
    second = np.array([[1.0, 2.0], [np.nan, np.nan], [5.0, 6.0]])
    table = read_labels(_relabel(sleap_project, _add_animal(2, second, "mouse-b", "mouse-a")))
    assert table.multi_animal and table.keypoints.shape == (4, 2, 3, 2)
    np.testing.assert_allclose(table.keypoints[:, 0], sleap_points, rtol=1e-6)
    np.testing.assert_allclose(table.keypoints[2, 1], second, rtol=1e-6)
    assert np.isnan(table.keypoints[[0, 1, 3], 1]).all()
    assert table.tracks.tolist() == [["", ""], ["", ""], ["mouse-a", "mouse-b"], ["", ""]]
    assert table.instance_counts().tolist() == [1, 1, 2, 1]


def test_a_track_on_two_instances_of_a_frame_names_the_frame(sleap_project: Path) -> None:
    edited = _relabel(sleap_project, _add_animal(2, np.ones((3, 2)), "mouse-a", "mouse-a"))
    with pytest.raises(InputError, match="track 'mouse-a' is used by two instances, 0 and 1") as caught:
        read_labels(edited)
    assert str(edited) in str(caught.value) and "frame 12 of video 'm1'" in str(caught.value)


def test_an_instance_with_no_labeled_point_names_the_frame(sleap_project: Path) -> None:
    edited = _relabel(sleap_project, _add_animal(1, np.full((3, 2), np.nan), "mouse-b"))
    with pytest.raises(InputError, match=r"instance 1 \(track 'mouse-b'\) has no labeled point") as caught:
        read_labels(edited)
    assert str(edited) in str(caught.value) and "frame 11 of video 'm1'" in str(caught.value)


def test_frame_past_the_end_of_the_video_names_the_row(sleap_project: Path) -> None:
    def move_past_end(labels) -> None:
        labels.labeled_frames[1].frame_idx = 30  # the video has frames 0..29

    table = read_slp(_relabel(sleap_project, move_past_end))
    with pytest.raises(InputError, match="frame 30 is past the end of video") as caught:
        table.images.locate(1)
    assert "(row 1)" in str(caught.value)


def test_predictions_only_file_is_refused(sleap_project: Path) -> None:
    def drop_user_instances(labels) -> None:
        for frame in labels.labeled_frames:
            frame.instances = [i for i in frame.instances if type(i).__name__ == "PredictedInstance"]

    edited = _relabel(sleap_project, drop_user_instances)
    with pytest.raises(InputError, match="no frame has a user-labeled instance") as caught:
        read_labels(edited)
    assert str(edited) in str(caught.value)


def test_files_that_are_not_sleap_are_named(tmp_path: Path) -> None:
    text = tmp_path / "notes.slp"
    text.write_text("not hdf5 " * 20)
    with pytest.raises(InputError, match="no HDF5 signature") as caught:
        read_labels(text)
    assert str(text) in str(caught.value)
    other = tmp_path / "other.slp"
    with h5py.File(other, "w") as f:
        f["x"] = 1
    with pytest.raises(InputError, match="not a readable SLEAP label file") as caught:
        read_labels(other)
    assert str(other) in str(caught.value)
