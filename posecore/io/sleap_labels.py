"""SLEAP label files (`.slp`, and `.pkg.slp` packages with the labeled frames embedded).

The file is read with sleap-io (`sleap_io.load_slp`, videos not opened). Keypoint names are the
skeleton's node names. Only user instances are labels; predicted instances are not. A frame
with none (predictions only) is not a labeled row. Points that are not visible, or NaN, stay
NaN. A file where every labeled frame has one user instance and none has a track reads as one
animal per frame, keypoints (N, K, 2); otherwise it is a multi-animal table, keypoints
(N, I, K, 2) with each instance's track name (`LabelTable.tracks`), where a track used by two
instances of one frame, or an instance with no labeled point, is an error naming the frame.

Coordinates need no conversion: SLEAP files since format 1.1 put the centre of the top-left
pixel at (0, 0), as posecore does, and sleap-io shifts older files (format 1.0, corner at
(0, 0)) by -0.5 as it reads them.

Images come from where each labeled frame's video is:

- a video file (sleap-io's `MediaVideo`): the frame is decoded by
  `posecore.io.video.read_frame_array`, exactly as a full sequential decode gives it (not by
  sleap-io's video backend). The video path is tried as written when absolute, relative to the
  label file's folder, and last as the bare file name in that folder (SLEAP stores the path it
  was opened with, often one on another machine).
- an image sequence (`ImageVideo`): the frame's image file, found the same way.
- images embedded in the label file (a `.pkg.slp`): the encoded PNG or JPEG bytes are read with
  h5py and decoded with Pillow, with sleap-io's rule for channel order (stored "BGR", or no
  `channel_order` in a file older than format 1.4, means red and blue are swapped).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import h5py
import numpy as np
from PIL import Image

from posecore.errors import InputError
from posecore.io.label_table import (
    FrameRef,
    LabelTable,
    as_rgb,
    find_image,
    load_image,
    require_file,
    source_video,
)
from posecore.io.video import VideoInfo, probe, read_frame_array

VideoKind = Literal["media", "images", "embedded"]


@dataclass(frozen=True)
class SleapVideo:
    """One video of a SLEAP file, as far as posecore reads frames from it.

    Attributes:
        kind: "media" (a video file), "images" (an image sequence) or "embedded" (images inside
            the label file).
        files: the video file ("media"), the image files in frame order ("images"), or the
            label file itself ("embedded"), as written.
        name: the video's name: the (original) video file's stem; for an embedded video with no
            record of its original, the package's name and the video's group.
        dataset: for "embedded", the HDF5 dataset holding the encoded images.
    """

    kind: VideoKind
    files: tuple[str, ...]
    name: str
    dataset: str = ""


@dataclass(frozen=True)
class SleapFrames:
    """The images of a SLEAP table's rows: frames of its videos (an `ImageSource`).

    Attributes:
        label_path: the SLEAP file.
        videos: the file's videos.
        video_of: the video (index into `videos`) of each row.
        frame_of: the frame index of each row in its video.
    """

    label_path: Path
    videos: tuple[SleapVideo, ...]
    video_of: tuple[int, ...]
    frame_of: tuple[int, ...]
    _probed: dict[Path, VideoInfo] = field(default_factory=dict, compare=False, repr=False)

    def locate(self, row: int) -> FrameRef:
        """The file holding the frame of `row`; a video file is probed to check the frame is in it."""
        video, frame = self.videos[self.video_of[row]], self.frame_of[row]
        if video.kind == "embedded":
            return FrameRef(path=self.label_path, video=video.name, frame=frame, member=video.dataset)
        if video.kind == "images":
            if frame >= len(video.files):
                message = f"frame {frame} is past the end of an image sequence of {len(video.files)} images"
                raise InputError(self.label_path, message, f"row {row}")
            found = self._find(video.files[frame], row, "image")
            return FrameRef(path=found, video=source_video(found), frame=frame)
        found = self._find(video.files[0], row, "video")
        info = self._info(found)
        if frame >= info.n_frames:
            message = f"frame {frame} is past the end of video {str(found)!r} ({info.n_frames} frames)"
            raise InputError(self.label_path, message, f"row {row}")
        return FrameRef(path=found, video=video.name, frame=frame)

    def load(self, rows: Sequence[int]) -> list[np.ndarray]:
        """Decode the frames of `rows`: each video's frames in one sorted `read_frame_array` call."""
        images: dict[int, np.ndarray] = {}
        for v, video in enumerate(self.videos):
            mine = sorted((self.frame_of[row], row) for row in rows if self.video_of[row] == v)
            if not mine:
                continue
            if video.kind == "media":
                path = self.locate(mine[0][1]).path
                frames = read_frame_array(path, [frame for frame, _ in mine], info=self._info(path))  # (n, H, W, 3)
                images.update((row, frames[i]) for i, (_, row) in enumerate(mine))
            elif video.kind == "images":
                for _, row in mine:
                    images[row] = self._load_file(self.locate(row).path, row)
            else:
                images.update(_read_embedded(self.label_path, video.dataset, mine))
        return [images[row] for row in rows]

    def _load_file(self, path: Path, row: int) -> np.ndarray:
        try:
            return load_image(path)
        except (OSError, ValueError, SyntaxError) as error:
            raise InputError(self.label_path, f"cannot read image {str(path)!r} ({error})", f"row {row}") from error

    def _find(self, written: str, row: int, what: str) -> Path:
        return find_image(self.label_path, written, roots=(".",), by_name=True, row=row, what=what)

    def _info(self, path: Path) -> VideoInfo:
        if path not in self._probed:
            self._probed[path] = probe(path)
        return self._probed[path]


def load_slp_file(path: Path, what: str = "SLEAP file") -> Any:
    """The `sleap_io.Labels` of a .slp file, its videos left closed.

    Raises:
        InputError: naming `path` as not a `what`, when it is missing, not HDF5 or not readable
            by sleap-io.
    """
    import sleap_io  # a heavy import, needed only for this format

    require_file(path)
    if not h5py.is_hdf5(path):
        raise InputError(path, f"not a {what} (no HDF5 signature)")
    try:
        return sleap_io.load_slp(str(path), open_videos=False)
    except (OSError, KeyError, ValueError, TypeError, IndexError, json.JSONDecodeError) as error:
        raise InputError(path, f"not a readable {what} ({type(error).__name__}: {error})") from error


def read_slp(path: str | Path) -> LabelTable:
    """Read the user-labeled frames of a SLEAP file (`.slp` or `.pkg.slp`).

    Rows are the labeled frames that have a user instance, in file order; `image_paths` reads
    "<video> frame <index>".

    Raises:
        InputError: the file is missing or not a SLEAP file, its skeletons name different
            keypoints, it has no user-labeled frame, a multi-animal frame has two instances on
            one track or an instance with no labeled point (naming the frame and the video), or
            a video is of a kind posecore cannot read (a cropped video, an HDF5 array video).
    """
    path = Path(path)
    labels = load_slp_file(path, "SLEAP label file")
    names = _keypoint_names(path, labels)
    videos: list[SleapVideo] = []
    index_of: dict[int, int] = {}  # id(sleap_io.Video) -> index into videos
    rows: list[list[tuple[np.ndarray, str]]] = []  # per labeled frame: (xy (K, 2), track name) per user instance
    image_paths, video_of, frame_of, wheres = [], [], [], []
    for labeled_frame in labels.labeled_frames:
        instances = labeled_frame.user_instances
        if not instances:
            continue  # predictions only: not a label
        video = labeled_frame.video
        if id(video) not in index_of:
            index_of[id(video)] = len(videos)
            videos.append(_describe_video(path, video, len(videos)))
        described = videos[index_of[id(video)]]
        where = f"frame {labeled_frame.frame_idx} of video {described.name!r}"
        points = []
        for instance in instances:
            order = [instance.skeleton.node_names.index(name) for name in names]
            xy = np.asarray(instance.numpy(invisible_as_nan=True), dtype=np.float32)[order]  # (K, 2) (x, y)
            if np.isinf(xy).any():
                raise InputError(path, f"keypoint {names[int(np.nonzero(np.isinf(xy))[0][0])]!r} is infinite", where)
            points.append((xy, "" if instance.track is None else str(instance.track.name)))
        rows.append(points)
        wheres.append(where)
        image_paths.append(f"{described.name} frame {labeled_frame.frame_idx}")
        video_of.append(index_of[id(video)])
        frame_of.append(int(labeled_frame.frame_idx))
    if not rows:
        raise InputError(path, "no frame has a user-labeled instance (only predictions, or nothing labeled)")
    images = SleapFrames(path, tuple(videos), tuple(video_of), tuple(frame_of))
    if all(len(points) == 1 and not points[0][1] for points in rows):  # one untracked animal per frame
        keypoints = np.stack([points[0][0] for points in rows])  # (N, K, 2)
        return LabelTable(path, tuple(image_paths), names, keypoints, "", images)
    keypoints, tracks = _instance_slots(path, rows, wheres, names)
    return LabelTable(path, tuple(image_paths), names, keypoints, "", images, tracks=tracks)


def _instance_slots(
    path: Path, rows: list[list[tuple[np.ndarray, str]]], wheres: list[str], names: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints float32 (N, I, K, 2) and track names (N, I) of frames with several (or tracked) instances.

    Raises:
        InputError: a track on two instances of one frame, or an instance with no labeled point,
            naming the frame (`wheres`).
    """
    n_slots = max(len(points) for points in rows)
    keypoints = np.full((len(rows), n_slots, len(names), 2), np.nan, dtype=np.float32)  # (N, I, K, 2)
    tracks = np.full((len(rows), n_slots), "", dtype=object)  # (N, I)
    for r, (points, where) in enumerate(zip(rows, wheres, strict=True)):
        seen: dict[str, int] = {}
        for i, (xy, track) in enumerate(points):
            named = f"instance {i}" + (f" (track {track!r})" if track else "")
            if np.isnan(xy).all():
                raise InputError(path, f"{named} has no labeled point (every point is missing or not visible)", where)
            if track and track in seen:
                raise InputError(path, f"track {track!r} is used by two instances, {seen[track]} and {i}", where)
            seen[track] = i
            keypoints[r, i], tracks[r, i] = xy, track
    return keypoints, tracks


def _keypoint_names(path: Path, labels: Any) -> tuple[str, ...]:
    """The node names of the file's skeleton; several skeletons must name the same nodes."""
    skeletons = list(labels.skeletons)
    if not skeletons:
        raise InputError(path, "the SLEAP file has no skeleton")
    names = tuple(skeletons[0].node_names)
    for skeleton in skeletons[1:]:
        if sorted(skeleton.node_names) != sorted(names):
            raise InputError(path, f"skeletons name different keypoints: {list(names)} and {list(skeleton.node_names)}")
    return names


def _describe_video(path: Path, video: Any, index: int) -> SleapVideo:
    """A sleap-io `Video` (not opened) as a `SleapVideo`, or an `InputError` for kinds posecore cannot read."""
    meta = dict(video.backend_metadata or {})
    kind = meta.get("type", "")
    if getattr(video, "is_cropped", False):
        raise InputError(path, f"video {video.filename!r} is a cropped view of another video; posecore cannot read it")
    if kind == "HDF5Video" and meta.get("has_embedded_images", False):
        original = getattr(video, "original_video", None) or video.source_video
        name = Path(str(original.filename)).stem if original is not None else f"{path.name}/{index}"
        dataset = str(meta.get("dataset") or f"video{index}/video")
        return SleapVideo(kind="embedded", files=(str(path),), name=name, dataset=dataset)
    if kind == "ImageVideo" or isinstance(video.filename, list):
        files = tuple(str(f) for f in video.filename)
        return SleapVideo(kind="images", files=files, name=PurePosixPath(files[0].replace("\\", "/")).parent.name)
    if kind in ("MediaVideo", "") and isinstance(video.filename, str):
        filename = str(video.filename)
        return SleapVideo(kind="media", files=(filename,), name=PurePosixPath(filename.replace("\\", "/")).stem)
    raise InputError(path, f"video {video.filename!r} is a {kind or 'video of unknown kind'}; posecore cannot read it")


def _read_embedded(label_path: Path, dataset: str, frames_rows: list[tuple[int, int]]) -> dict[int, np.ndarray]:
    """Decode embedded images: row -> uint8 (H, W, 3), for (frame, row) pairs of one embedded video."""
    out: dict[int, np.ndarray] = {}
    try:
        with h5py.File(label_path, "r") as f:
            images = f[dataset]
            numbers = f[f"{dataset.rsplit('/', 1)[0]}/frame_numbers"][()] if "/" in dataset else np.arange(len(images))
            position = {int(n): i for i, n in enumerate(numbers)}
            order = str(images.attrs.get("channel_order", ""))
            if not order:  # sleap-io: files before format 1.4 were written through OpenCV, in BGR
                version = float(f["metadata"].attrs.get("format_id", 0)) if "metadata" in f else 0.0
                order = "BGR" if version < 1.4 else "RGB"
            for frame, row in frames_rows:
                if frame not in position:
                    raise InputError(label_path, f"frame {frame} is not embedded in {dataset!r}", f"row {row}")
                data = images[position[frame]]
                if images.ndim == 4:  # raw pixels, (H, W, C)
                    image = as_rgb(np.asarray(data))
                else:  # encoded PNG / JPEG bytes, zero-padded to the longest
                    with Image.open(io.BytesIO(np.asarray(data).tobytes())) as encoded:
                        image = np.asarray(encoded.convert("RGB"))  # (H, W, 3)
                    if order == "BGR":
                        image = np.ascontiguousarray(image[:, :, ::-1])
                out[row] = image
    except (OSError, KeyError, ValueError, SyntaxError) as error:
        if isinstance(error, InputError):
            raise
        raise InputError(label_path, f"cannot read embedded images {dataset!r} ({error})") from error
    return out
