from __future__ import annotations

import json
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

    edited = _relabel(sleap_project, move_past_end)
    table = read_slp(edited)
    with pytest.raises(InputError) as caught:
        table.images.locate(1)
    video = sleap_project.parent / "m1.mp4"
    assert str(caught.value) == f"{edited} (row 1): frame 30 is past the end of video {str(video)!r} (30 frames)"


def test_predictions_only_file_is_refused(sleap_project: Path) -> None:
    def drop_user_instances(labels) -> None:
        for frame in labels.labeled_frames:
            frame.instances = [i for i in frame.instances if type(i).__name__ == "PredictedInstance"]

    edited = _relabel(sleap_project, drop_user_instances)
    with pytest.raises(InputError, match="no frame has a user-labeled instance") as caught:
        read_labels(edited)
    assert str(edited) in str(caught.value)


def _error(call: Callable) -> str:
    with pytest.raises(InputError) as caught:
        call()
    return str(caught.value)


def _save(folder: Path, frames: list[tuple[object, int, np.ndarray]], *skeletons, name: str = "labels.slp") -> Path:
    """A SLEAP file with one user instance per (video, frame, (K, 2) points), on the first skeleton."""
    skeletons = skeletons or (sio.Skeleton(list(SLEAP_NODES)),)
    labeled, videos = [], []
    for video, frame, points in frames:
        instance = sio.Instance.from_numpy(np.asarray(points, dtype=float), skeleton=skeletons[0])
        labeled.append(sio.LabeledFrame(video=video, frame_idx=frame, instances=[instance]))
        videos += [video] if all(video is not v for v in videos) else []
    path = folder / name
    sio.save_slp(sio.Labels(labeled_frames=labeled, skeletons=list(skeletons), videos=videos), str(path), verbose=False)
    return path


def _edit_video_json(path: Path, edit: Callable[[dict], None]) -> Path:
    """Rewrite the first video's record in the file's `videos_json` (as another tool would have written it)."""
    with h5py.File(path, "r+") as f:
        records = [json.loads(r) for r in f["videos_json"][()]]
        edit(records[0])
        del f["videos_json"]
        f["videos_json"] = np.array([json.dumps(r).encode() for r in records], dtype=object)
    return path


POINTS = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])


def test_an_image_sequence_is_read_frame_by_frame_from_its_files(tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "frames_v1"
    folder.mkdir()
    pixels = np.random.default_rng(1).integers(0, 255, (4, 6, 8, 3), dtype=np.uint8)
    files = [folder / f"img{i}.png" for i in range(4)]
    for image, file in zip(pixels, files, strict=True):
        Image.fromarray(image).save(file)
    video = sio.Video.from_filename([str(f) for f in files])
    path = _save(tmp_path, [(video, 1, POINTS), (video, 3, POINTS + 1), (video, 7, POINTS), (video, 4, POINTS)])
    table = read_slp(path)
    assert table.image_paths == ("frames_v1 frame 1", "frames_v1 frame 3", "frames_v1 frame 7", "frames_v1 frame 4")
    ref = table.images.locate(1)
    assert (ref.path, ref.video, ref.frame) == (files[3], "frames_v1", 3)
    np.testing.assert_array_equal(np.stack(table.images.load([1, 0])), pixels[[3, 1]])
    assert _error(lambda: table.images.locate(2)) == (
        f"{path} (row 2): frame 7 is past the end of an image sequence of 4 images"
    )
    assert _error(lambda: table.images.locate(3)) == (
        f"{path} (row 3): frame 4 is past the end of an image sequence of 4 images"
    )
    files[1].unlink()
    assert f"{path} (row 0): image " in _error(lambda: table.images.load([0]))
    files[3].write_bytes(b"not a PNG")
    assert _error(lambda: table.images.load([1])).startswith(f"{path} (row 1): cannot read image {str(files[3])!r} (")


def test_frames_of_one_video_load_whatever_else_the_file_holds(
    tmp_path: Path, label_video: Path, sleap_points: np.ndarray
) -> None:
    for name in ("m1.mp4", "m2.mp4"):
        shutil.copy(label_video, tmp_path / name)
    m1, m2 = (sio.Video.from_filename(str(tmp_path / name)) for name in ("m1.mp4", "m2.mp4"))
    path = _save(tmp_path, [(m1, 3, POINTS), (m2, 11, POINTS), (m2, 5, POINTS)])
    table = read_slp(path)
    assert table.image_paths == ("m1 frame 3", "m2 frame 11", "m2 frame 5")
    expected = read_frame_array(label_video, [5, 11])
    np.testing.assert_array_equal(np.stack(table.images.load([2, 1])), expected)  # the second video's only
    np.testing.assert_array_equal(table.images.load([2])[0], expected[0])  # one frame


def test_a_video_is_looked_for_as_written_then_by_its_bare_name_beside_the_label_file_only(
    tmp_path: Path, label_video: Path
) -> None:
    (tmp_path / "project" / "videos").mkdir(parents=True)
    shutil.copy(label_video, tmp_path / "project" / "videos" / "m1.mp4")
    video = sio.Video.from_filename("videos/m1.mp4")  # relative to the label file's folder
    path = _save(tmp_path / "project", [(video, 3, POINTS)])
    assert read_slp(path).images.locate(0).path == tmp_path / "project" / "videos" / "m1.mp4"
    # Written on Windows, the video now beside the label file: found by its bare name, named "m1".
    _edit_video_json(
        path, lambda r: r.update(filename=r"D:\rig\m1.mp4") or r["backend"].update(filename=r"D:\rig\m1.mp4")
    )
    shutil.move(tmp_path / "project" / "videos" / "m1.mp4", tmp_path / "project" / "m1.mp4")
    table = read_slp(path)
    assert table.image_paths == ("m1 frame 3",) and table.images.locate(0).path == tmp_path / "project" / "m1.mp4"
    # In the folder above the label file it is not looked for.
    shutil.move(tmp_path / "project" / "m1.mp4", tmp_path / "m1.mp4")
    assert "video " in _error(lambda: read_slp(path).images.locate(0))


def test_skeletons_naming_the_same_nodes_in_another_order_read_in_the_first_ones_order(tmp_path: Path) -> None:
    video = sio.Video.from_filename(str(tmp_path / "m1.mp4"))
    first, reversed_ = sio.Skeleton(list(SLEAP_NODES)), sio.Skeleton(list(SLEAP_NODES[::-1]))
    path = _save(tmp_path, [(video, 3, POINTS)], reversed_, first)  # the instance on the reversed skeleton
    table = read_slp(path)
    assert table.keypoint_names == SLEAP_NODES[::-1] and table.keypoints.tolist() == [POINTS.tolist()]
    other = sio.Skeleton(["a", "b", "c"])
    path = _save(tmp_path, [(video, 3, POINTS)], first, other, name="other.slp")
    assert _error(lambda: read_slp(path)) == (
        f"{path}: skeletons name different keypoints: ['head', 'neck', 'tail'] and ['a', 'b', 'c']"
    )
    three = _save(tmp_path, [(video, 3, POINTS)], first, reversed_, other, name="three.slp")
    assert "skeletons name different keypoints" in _error(lambda: read_slp(three))


def test_an_infinite_point_and_a_file_without_skeleton_are_named(tmp_path: Path) -> None:
    video = sio.Video.from_filename(str(tmp_path / "m1.mp4"))
    path = _save(tmp_path, [(video, 3, POINTS), (video, 4, [[1.0, 2.0], [np.inf, 4.0], [5.0, 6.0]])])
    assert _error(lambda: read_slp(path)) == f"{path} (frame 4 of video 'm1'): keypoint 'neck' is infinite"
    empty = tmp_path / "empty.slp"
    sio.save_slp(sio.Labels(), str(empty), verbose=False)
    assert _error(lambda: read_slp(empty)) == f"{empty}: the SLEAP file has no skeleton"


def test_a_frame_of_predictions_only_before_the_labels_is_passed_over(tmp_path: Path) -> None:
    skeleton = sio.Skeleton(list(SLEAP_NODES))
    video = sio.Video.from_filename(str(tmp_path / "m1.mp4"))
    predicted = sio.PredictedInstance.from_numpy(POINTS, skeleton=skeleton, score=0.5)
    frames = [sio.LabeledFrame(video=video, frame_idx=1, instances=[predicted])]
    frames.append(
        sio.LabeledFrame(video=video, frame_idx=2, instances=[sio.Instance.from_numpy(POINTS, skeleton=skeleton)])
    )
    path = tmp_path / "labels.slp"
    sio.save_slp(sio.Labels(labeled_frames=frames, skeletons=[skeleton], videos=[video]), str(path), verbose=False)
    table = read_slp(path)
    assert table.image_paths == ("m1 frame 2",) and table.path == path and table.scorer == ""


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        ({"type": "HDF5Video", "dataset": "frames"}, "video 'v.h5' is a HDF5Video; posecore cannot read it"),
        (
            {"type": "HDF5Video", "dataset": "frames", "has_embedded_images": False},
            "video 'v.h5' is a HDF5Video; posecore cannot read it",
        ),
        ({"type": "TiffVideo"}, "video 'v.h5' is a TiffVideo; posecore cannot read it"),
    ],
)
def test_videos_posecore_cannot_read_are_named(tmp_path: Path, backend: dict, message: str) -> None:
    path = _save(tmp_path, [(sio.Video.from_filename(str(tmp_path / "m1.mp4")), 3, POINTS)])
    _edit_video_json(path, lambda r: r.update(filename="v.h5", backend={**backend, "filename": "v.h5"}))
    assert _error(lambda: read_slp(path)) == f"{path}: {message}"


def test_a_video_of_no_recorded_kind_is_a_video_file_and_a_list_of_files_an_image_sequence(tmp_path: Path) -> None:
    path = _save(tmp_path, [(sio.Video.from_filename(str(tmp_path / "m1.mp4")), 3, POINTS)])
    _edit_video_json(path, lambda r: r["backend"].pop("type"))
    assert read_slp(path).images.videos[0].kind == "media"
    _edit_video_json(path, lambda r: r["backend"].update(type=""))
    assert read_slp(path).images.videos[0].kind == "media"
    files = [str(tmp_path / "seq" / f"img{i}.png") for i in range(3)]
    _edit_video_json(
        path, lambda r: r.update(filename=files, backend={"type": "", "filename": files[0], "filenames": files})
    )
    video = read_slp(path).images.videos[0]
    assert (video.kind, video.files, video.name) == ("images", tuple(files), "seq")


def test_a_cropped_video_is_refused(tmp_path: Path) -> None:
    cropped = sio.Video.from_crop(sio.Video.from_filename(str(tmp_path / "m1.mp4")), (0, 0, 32, 24))
    path = _save(tmp_path, [(cropped, 3, POINTS)])
    assert _error(lambda: read_slp(path)) == (
        f"{path}: video {str(tmp_path / 'm1.mp4')!r} is a cropped view of another video; posecore cannot read it"
    )


@pytest.fixture
def package(tmp_path: Path, label_video: Path, write_sleap: Callable[..., Path]) -> Path:
    """A .pkg.slp of the label video's frames 3, 11, 12 and 27 (the video itself gone)."""
    video = tmp_path / "source" / "m1.mp4"
    video.parent.mkdir()
    shutil.copy(label_video, video)
    path = write_sleap(tmp_path, video, embed=True, name="labels.pkg.slp")
    video.unlink()
    return path


def test_embedded_channel_order_follows_the_attribute_else_the_format_version(package: Path, label_video: Path) -> None:
    truth = read_frame_array(label_video, list(SLEAP_FRAMES))  # (4, 48, 64, 3) RGB
    images = package.parent / "edited.pkg.slp"
    for order, version, swapped in (("", 1.3, False), ("", 1.4, True), ("RGB", 1.3, True)):
        shutil.copy(package, images)
        with h5py.File(images, "r+") as f:  # sleap-io stores these PNGs in BGR, saying so
            if order:
                f["video0/video"].attrs["channel_order"] = order
            else:
                del f["video0/video"].attrs["channel_order"]
            f["metadata"].attrs["format_id"] = version
        loaded = np.stack(read_slp(images).images.load(range(4)))
        np.testing.assert_array_equal(loaded, truth[..., ::-1] if swapped else truth, err_msg=f"{order} {version}")


def test_embedded_raw_pixels_missing_frames_and_datasets_are_handled(package: Path, label_video: Path) -> None:
    raw = np.random.default_rng(2).integers(0, 255, (4, 48, 64, 3), dtype=np.uint8)
    with h5py.File(package, "r+") as f:
        del f["video0/video"]
        f["video0/video"] = raw  # (N, H, W, C): pixels, not encoded images
    table = read_slp(package)
    np.testing.assert_array_equal(np.stack(table.images.load([2, 0])), raw[[2, 0]])
    with h5py.File(package, "r+") as f:
        f["video0/frame_numbers"][1] = 13  # frame 11 no longer embedded
    assert _error(lambda: table.images.load([1])) == f"{package} (row 1): frame 11 is not embedded in 'video0/video'"
    with h5py.File(package, "r+") as f:
        del f["video0/video"]
    assert _error(lambda: table.images.load([0])).startswith(f"{package}: cannot read embedded images 'video0/video' (")


def test_an_embedded_video_with_no_record_of_its_source_is_named_after_the_package(package: Path) -> None:
    def forget(record: dict) -> None:
        record.pop("source_video", None)
        record.pop("original_video", None)
        record["backend"]["dataset"] = ""  # no dataset recorded: the first video's default

    _edit_video_json(package, forget)
    table = read_slp(package)
    assert table.image_paths[0] == "labels.pkg.slp/0 frame 3"
    ref = table.images.locate(0)
    assert (ref.path, ref.video, ref.member) == (package, "labels.pkg.slp/0", "video0/video")
    assert table.images.load([0])[0].shape == (48, 64, 3)


def test_files_that_are_not_sleap_name_themselves_and_the_error(tmp_path: Path) -> None:
    text = tmp_path / "notes.slp"
    text.write_text("not hdf5 " * 20)
    assert _error(lambda: read_labels(text)) == f"{text}: not a SLEAP label file (no HDF5 signature)"
    other = tmp_path / "other.slp"
    with h5py.File(other, "w") as f:
        f["x"] = 1
    assert _error(lambda: read_labels(other)).startswith(f"{other}: not a readable SLEAP label file (KeyError: ")
