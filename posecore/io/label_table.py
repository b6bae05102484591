"""What every label reader returns: a `LabelTable`, and where the image of each labeled row is.

A row's image may be an image file on disk (DeepLabCut, COCO), a frame of a video (SLEAP) or an
image stored inside the label file itself (a SLEAP package). So every reader attaches an
`ImageSource` to its table, and `assemble_dataset` finds (`ImageSource.locate`) and loads
(`ImageSource.load`) the images of every table through it, the same way whatever the format.
`ImageFiles` is the source for images that are files; `posecore.io.sleap_labels` has the others.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

import numpy as np

from posecore.errors import InputError

# Folder names that say how frames are stored, not which video they are from; `source_video` skips them.
GENERIC_FOLDERS = frozenset({"", "labeled-data", "images", "imgs", "frames"})


@dataclass(frozen=True)
class FrameRef:
    """Where the image of one labeled row is, and which frame of which video it shows.

    Attributes:
        path: the file holding the image: an image file, a video, or a SLEAP package.
        video: the name of the video the frame came from (a DeepLabCut `labeled-data/<video>`
            folder, a video file's stem).
        frame: the frame's index in that video, -1 when unknown.
        member: where inside `path` the image is (an embedded SLEAP video's dataset); "" for
            image and video files.
    """

    path: Path
    video: str
    frame: int
    member: str = ""

    @property
    def location(self) -> str:
        """`path`, with `#member` appended when the image is inside it."""
        return f"{self.path}#{self.member}" if self.member else str(self.path)

    def keys(self) -> tuple[tuple[str | int, ...], ...]:
        """The identities of the frame: two rows with a key in common label the same frame.

        The resolved file (with its member and frame number), and, when the frame number is
        known, the video name and frame number: `labeled-data/m1/img0042.png` in two project
        folders, or frame 42 of `m1.mp4`, are the same frame.
        """
        keys: list[tuple[str | int, ...]] = [("file", str(self.path.resolve()), self.member, self.frame)]
        if self.frame >= 0:
            keys.append(("frame", self.video, self.frame))
        return tuple(keys)


class ImageSource(Protocol):
    """How a `LabelTable` finds and loads the images of its rows."""

    def locate(self, row: int) -> FrameRef:
        """Find the image of `row`; raise `InputError` naming the label file and row if it is missing."""
        ...

    def load(self, rows: Sequence[int]) -> list[np.ndarray]:
        """Load the images of `rows`, each uint8 (H, W, 3) RGB, in the order of `rows`.

        Raises:
            InputError: an image cannot be read (names the label file and the row).
        """
        ...


@dataclass(frozen=True, eq=False)
class LabelTable:
    """The labels of one file, as read (no images opened, no names mapped).

    A file of one animal per frame gives keypoints (N, K, 2). A multi-animal file (several
    instances on a frame, DeepLabCut's `individuals` header row, SLEAP tracks) gives
    (N, I, K, 2): I instance slots per row, an all-NaN slot being no animal, with each
    instance's track name in `tracks`.

    Attributes:
        path: the label file.
        image_paths: N image names as written in the file, for messages ("/"-joined when the
            file splits them over several index columns, DLC style); for frames of a video,
            the video's name and the frame number.
        keypoint_names: the K keypoint names, in file order.
        keypoints: float32 (N, K, 2), or (N, I, K, 2) for a multi-animal file: (x, y) in image
            pixels (x the column, y the row, centre of the top-left pixel at (0, 0)); NaN where
            a keypoint is not labeled.
        scorer: the labeler's name where the format records one ("" otherwise).
        images: finds and loads the image of each row.
        tracks: str (N, I) object array, the track (individual) name of each instance slot of a
            multi-animal file ("" where the slot is empty or the instance has no track); None
            for a single-animal file.
        unique_names: names of the keypoints that belong to the scene, not to an animal
            (multi-animal DeepLabCut's "unique body parts", individual "single").
        unique_keypoints: float32 (N, U, 2) (x, y) of those; None when there are none.
    """

    path: Path
    image_paths: tuple[str, ...]
    keypoint_names: tuple[str, ...]
    keypoints: np.ndarray
    scorer: str
    images: ImageSource
    tracks: np.ndarray | None = None
    unique_names: tuple[str, ...] = ()
    unique_keypoints: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.image_paths)

    @property
    def multi_animal(self) -> bool:
        """Whether rows hold instance slots: keypoints (N, I, K, 2)."""
        return self.keypoints.ndim == 4

    def instance_counts(self) -> np.ndarray:
        """Animals in each row, int (N,): slots with at least one labeled keypoint (1 per row single-animal)."""
        if not self.multi_animal:
            return np.ones(len(self), dtype=np.int64)
        return np.isfinite(self.keypoints).all(axis=-1).any(axis=-1).sum(axis=1)

    def describe_instance(self, row: int, slot: int) -> str:
        """An instance for messages: "instance 2 (track 'bird3')", or "instance 2" without a track."""
        track = "" if self.tracks is None else str(self.tracks[row, slot])
        return f"instance {slot} (track {track!r})" if track else f"instance {slot}"


@dataclass(frozen=True)
class ImageFiles:
    """Images that are files, named by paths relative to folders near the label file.

    Attributes:
        label_path: the label file (named in messages).
        image_paths: one image path per row, as written in the file.
        roots: folders, relative to the label file's folder, that relative paths are tried
            against, in order.
        by_name: also try the bare file name in the label file's folder, last.
        sizes: (H, W) each image should have, per row (None: not declared); empty: no check.
    """

    label_path: Path
    image_paths: tuple[str, ...]
    roots: tuple[str, ...] = (".", "..", "../..")
    by_name: bool = True
    sizes: tuple[tuple[int, int] | None, ...] = ()

    def find(self, row: int) -> Path:
        """The existing image file of `row` (the first candidate that exists)."""
        return find_image(self.label_path, self.image_paths[row], self.roots, self.by_name, row)

    def locate(self, row: int) -> FrameRef:
        """The image file of `row`, its video (`source_video`) and frame number (`frame_index`)."""
        found = self.find(row)
        return FrameRef(path=found, video=source_video(found), frame=frame_index(self.image_paths[row]))

    def load(self, rows: Sequence[int]) -> list[np.ndarray]:
        """Decode the images of `rows` (`load_image`), checking declared sizes."""
        images = []
        for row in rows:
            found = self.find(row)
            try:
                image = load_image(found)
            except (OSError, ValueError, SyntaxError) as error:
                message = f"cannot read image {str(found)!r} ({error})"
                raise InputError(self.label_path, message, f"row {row}") from error
            declared = self.sizes[row] if self.sizes else None
            if declared is not None and declared != image.shape[:2]:
                raise InputError(
                    self.label_path,
                    f"image {str(found)!r} is {image.shape[1]}x{image.shape[0]} (WxH) but the label file says "
                    f"{declared[1]}x{declared[0]}",
                    f"row {row}",
                )
            images.append(image)
        return images


def require_file(path: Path) -> None:
    """Raise `InputError` unless `path` is an existing, non-empty label file."""
    if not path.is_file():
        raise InputError(path, "label file not found")
    if path.stat().st_size == 0:
        raise InputError(path, "the label file is empty")


def find_image(
    label_path: str | Path,
    image_path: str,
    roots: Sequence[str] = (".", "..", "../.."),
    by_name: bool = True,
    row: int | None = None,
    what: str = "image",
) -> Path:
    """Find an image (or video) named in a label file: as an absolute path, else under each root, else by name.

    Windows separators (backslashes) are read as "/".

    Args:
        label_path: the label file the name is in.
        image_path: the image path as written in the file.
        roots: folders relative to the label file's folder to try a relative path against.
        by_name: last, try the bare file name in the label file's folder.
        row: the row's number, for the error message.
        what: what the file is, for the error message.

    Returns:
        The first candidate that is an existing file.

    Raises:
        InputError: none exists; names the label file, the row and the places searched.
    """
    label_path = Path(label_path)
    relative = PurePosixPath(image_path.replace("\\", "/"))
    folder = label_path.parent
    if relative.is_absolute():
        candidates = [Path(relative)]
    else:
        candidates = [Path(os.path.normpath(folder / root)) / relative for root in roots]  # "a/b/.." -> "a"
    if by_name:
        candidates.append(folder / relative.name)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    searched = ", ".join(dict.fromkeys(str(c) for c in candidates))
    raise InputError(
        label_path,
        f"{what} {image_path!r} not found (looked for {searched})",
        where=None if row is None else f"row {row}",
    )


def resolve_image(label_path: str | Path, image_path: str, row: int | None = None) -> Path:
    """Find the image a DeepLabCut / Lightning Pose label row points to.

    DeepLabCut writes image paths relative to the project folder (`labeled-data/<video>/img.png`)
    and keeps the label file in `labeled-data/<video>/`, while Lightning Pose keeps it in the
    project folder itself. So the path is tried, in order: as an absolute path; relative to the
    label file's folder, then one and two levels up; and last, the bare file name in the label
    file's folder.

    Raises:
        InputError: none exists; names the label file, the row and the folders searched.
    """
    return find_image(label_path, image_path, row=row)


def frame_index(image_path: str) -> int:
    """The frame number in a DLC-style image name (`img0042.png` -> 42), or -1 when it has none."""
    match = re.search(r"img(\d+)", PurePosixPath(image_path.replace("\\", "/")).name)
    return int(match.group(1)) if match else -1


def source_video(image: Path) -> str:
    """The video an image file shows a frame of: its nearest folder that names one.

    `labeled-data/<video>/img0001.png` (DeepLabCut) and `<video>/images/img00001.png` (posecore's
    `extract_frames`) give `<video>`; folders named like a storage place (`GENERIC_FOLDERS`) are
    skipped, so an image directly in a Lightning Pose project's `labeled-data/` gives the project.
    """
    for folder in Path(image).absolute().parents:
        if folder.name not in GENERIC_FOLDERS:
            return folder.name
    return ""


def load_image(path: str | Path) -> np.ndarray:
    """Read a PNG or JPEG image as uint8 RGB (H, W, 3); grey is replicated, alpha dropped.

    Raises:
        OSError or ValueError: the file cannot be decoded.
    """
    import matplotlib.image  # here: a second of import for the workflow, which reads labels only in its jobs

    return as_rgb(np.asarray(matplotlib.image.imread(path)))


def as_rgb(image: np.ndarray) -> np.ndarray:
    """A decoded image as uint8 RGB (H, W, 3): grey (H, W) or (H, W, 1) replicated, alpha dropped.

    Floats are taken as [0, 1] (matplotlib gives PNGs so, whatever their bit depth).
    """
    if image.dtype.kind == "f":
        image = np.clip(np.rint(image * 255.0), 0, 255)
    image = image.astype(np.uint8)
    if image.ndim == 2:  # grey (H, W) -> (H, W, 3)
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] in (1, 2):  # grey (+ alpha) -> (H, W, 3)
        image = np.repeat(image[:, :, :1], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:  # RGBA -> RGB
        image = image[:, :, :3]
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"unsupported image shape {image.shape}")
    return np.ascontiguousarray(image)
