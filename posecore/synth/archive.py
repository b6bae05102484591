"""Writing the synthetic archive: videos, exact ground truth and DeepLabCut-style labels.

Layout under the output folder:

    videos/{name}.mp4                         H.264 yuv420p, index at the front (faststart)
    ground_truth/{name}.parquet               one row per (frame, keypoint), exact positions
    labeled-data/{name}/img{frame:05d}.png    labeled frames, as decoded from the mp4
    labeled-data/{name}/CollectedData_{scorer}.csv
    videos.tsv                                the video sheet (video, path)
    synth.json                                the manifest, written last: its presence means complete
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from posecore import __version__
from posecore.io.atomic import atomic_path
from posecore.synth.animal import KEYPOINTS
from posecore.synth.media import decode_frames, encode_video, write_pngs
from posecore.synth.scene import Scene, make_scene

MANIFEST = "synth.json"


@dataclass(frozen=True)
class SynthConfig:
    """What archive to make; the same config always makes the same archive.

    Attributes:
        n_videos: number of videos (one animal each).
        n_frames: frames per video.
        width: frame width in pixels (even, for yuv420p).
        height: frame height in pixels (even).
        fps: frames per second.
        n_labeled_per_video: labeled frames per video, a seeded random frame from each of that
            many equal stretches of the video.
        noise_std: Gaussian pixel noise added to every frame (0-255 units).
        occlusion_rate: chance per frame that a brief occlusion (3-8 frames) starts.
        label_jitter_std: std in pixels of a labeler's error added to the labels (0: labels are
            the ground truth exactly).
        seed: seeds everything random.
        scorer: the labeler's name in the DeepLabCut files.
        crf: x264 constant rate factor (lower is better quality; 16 keeps labels honest).
    """

    n_videos: int = 3
    n_frames: int = 300
    width: int = 160
    height: int = 128
    fps: float = 30.0
    n_labeled_per_video: int = 40
    noise_std: float = 4.0
    occlusion_rate: float = 0.02
    label_jitter_std: float = 0.0
    seed: int = 0
    scorer: str = "synth"
    crf: int = 16

    def __post_init__(self) -> None:
        problems = []
        if self.n_videos < 1 or self.n_frames < 1:
            problems.append(f"n_videos ({self.n_videos}) and n_frames ({self.n_frames}) must be at least 1")
        if self.width < 64 or self.height < 64 or self.width % 2 or self.height % 2:
            problems.append(f"width x height ({self.width} x {self.height}) must be even and at least 64 each")
        if not 0 <= self.n_labeled_per_video <= self.n_frames:
            problems.append(f"n_labeled_per_video ({self.n_labeled_per_video}) must be in [0, n_frames]")
        if self.fps <= 0 or self.noise_std < 0 or self.label_jitter_std < 0 or not 0 <= self.occlusion_rate <= 1:
            problems.append(
                "fps must be positive, noise_std and label_jitter_std non-negative, occlusion_rate in [0, 1]"
            )
        if not 0 <= self.crf <= 51 or not self.scorer or "/" in self.scorer:
            problems.append(
                f"crf ({self.crf}) must be in [0, 51] and scorer ({self.scorer!r}) a non-empty file name part"
            )
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def video_names(self) -> tuple[str, ...]:
        """Names of the videos: mouse-000, mouse-001, ..."""
        return tuple(f"mouse-{i:03d}" for i in range(self.n_videos))

    def labeled_frames(self, video: int) -> np.ndarray:
        """int64 (n_labeled_per_video,) sorted frame indices labeled in video number `video`."""
        rng = np.random.default_rng([self.seed, video, 1])
        edges = np.arange(self.n_labeled_per_video + 1) * self.n_frames // max(self.n_labeled_per_video, 1)
        return rng.integers(edges[:-1], edges[1:]).astype(np.int64)


@dataclass(frozen=True)
class Archive:
    """The files of an archive, all under `root` (paths as `root` was given, not resolved).

    Attributes:
        root: the output folder.
        config: the settings it was made with.
        videos: videos/{name}.mp4, one per video.
        ground_truth: ground_truth/{name}.parquet, one per video.
        label_files: labeled-data/{name}/CollectedData_{scorer}.csv, one per video.
        images: labeled-data/{name}/img{frame:05d}.png, per video.
        video_sheet: videos.tsv.
        manifest: synth.json.
    """

    root: Path
    config: SynthConfig
    videos: tuple[Path, ...]
    ground_truth: tuple[Path, ...]
    label_files: tuple[Path, ...]
    images: tuple[tuple[Path, ...], ...]
    video_sheet: Path
    manifest: Path

    @classmethod
    def at(cls, root: str | Path, config: SynthConfig) -> Archive:
        """Where the files of the archive made with `config` are (whether or not they exist)."""
        labeled = [config.labeled_frames(i) for i in range(config.n_videos)]
        return cls(config=config, **layout(Path(root), config.video_names, config.scorer, labeled))

    def files(self) -> list[Path]:
        """Every file of the archive except the manifest."""
        images = [path for paths in self.images for path in paths]
        return [*self.videos, *self.ground_truth, *self.label_files, *images, self.video_sheet]


def layout(root: Path, names: tuple[str, ...], scorer: str, labeled: list) -> dict[str, Any]:
    """The paths of an archive's files under `root`: videos, ground truth, labels and images (frames `labeled`)."""
    folders = [root / "labeled-data" / name for name in names]
    return {
        "root": root,
        "videos": tuple(root / "videos" / f"{name}.mp4" for name in names),
        "ground_truth": tuple(root / "ground_truth" / f"{name}.parquet" for name in names),
        "label_files": tuple(folder / f"CollectedData_{scorer}.csv" for folder in folders),
        "images": tuple(
            tuple(folder / f"img{frame:05d}.png" for frame in frames)
            for folder, frames in zip(folders, labeled, strict=True)
        ),
        "video_sheet": root / "videos.tsv",
        "manifest": root / MANIFEST,
    }


def manifest_content(archive: Archive) -> dict:  # or a social_archive.SocialArchive: the same fields
    """The manifest's content: the generator, its version, the config and the files (relative)."""
    return {
        "generator": "posecore.synth",
        "posecore_version": __version__,
        "config": asdict(archive.config),
        "files": [path.relative_to(archive.root).as_posix() for path in archive.files()],
    }


def is_complete(archive: Archive) -> bool:
    """Whether `archive.root` holds this archive, finished: same manifest, every file present."""
    try:
        found = json.loads(archive.manifest.read_text())
    except (OSError, ValueError):
        return False
    return found == manifest_content(archive) and all(path.is_file() for path in archive.files())


def remove_previous(root: Path) -> None:
    """Remove the manifest of an earlier archive in `root`, then the files it lists (only those)."""
    manifest = root / MANIFEST
    try:
        files = json.loads(manifest.read_text()).get("files", [])
    except (OSError, ValueError, AttributeError):
        return
    manifest.unlink()
    for name in files:
        path = root / name
        if ".." not in Path(name).parts and not Path(name).is_absolute():
            path.unlink(missing_ok=True)


def _write_labels(scene: Scene, video: int, archive: Archive) -> None:
    """The labeled frames' PNGs (decoded from the written mp4) and the DeepLabCut CSV."""
    config = archive.config
    frames = config.labeled_frames(video)
    write_pngs(decode_frames(archive.videos[video], frames, config.width, config.height), archive.images[video])
    labels = scene.keypoints[frames].copy()  # (N, K, 2)
    if config.label_jitter_std > 0:
        rng = np.random.default_rng([config.seed, video, 2])
        labels += rng.normal(0.0, config.label_jitter_std, labels.shape)
        labels[..., 0] = labels[..., 0].clip(-0.5, config.width - 0.5)
        labels[..., 1] = labels[..., 1].clip(-0.5, config.height - 0.5)
    labels[~scene.visible[frames]] = np.nan  # a labeler leaves hidden keypoints empty
    columns = pd.MultiIndex.from_product(
        [[config.scorer], KEYPOINTS, ["x", "y"]], names=["scorer", "bodyparts", "coords"]
    )
    rows = [path.relative_to(archive.root).as_posix() for path in archive.images[video]]
    table = pd.DataFrame(labels.reshape(len(frames), -1), index=rows, columns=columns)  # (N, K * 2)
    with atomic_path(archive.label_files[video]) as tmp:
        table.to_csv(tmp)


def _write_ground_truth(scene: Scene, name: str, path: Path, config: SynthConfig) -> None:
    """One row per (frame, keypoint): video, frame, time_s, instance, keypoint, x, y, visible."""
    n_frames, n_keypoints = scene.keypoints.shape[:2]
    frame = np.repeat(np.arange(n_frames, dtype=np.int64), n_keypoints)  # (T * K,), frame-major
    table = pa.table(
        {
            "video": pa.array([name] * len(frame), pa.string()),
            "frame": frame,
            "time_s": frame / config.fps,
            "instance": np.zeros(len(frame), np.int64),
            "keypoint": pa.array(list(KEYPOINTS) * n_frames, pa.string()),
            "x": scene.keypoints[..., 0].reshape(-1),
            "y": scene.keypoints[..., 1].reshape(-1),
            "visible": scene.visible.reshape(-1),
        }
    )
    meta = {b"posecore.synth": json.dumps({"posecore_version": __version__, "config": asdict(config)}).encode()}
    with atomic_path(path) as tmp:
        pq.write_table(table.replace_schema_metadata(meta), tmp)


def make_archive(out_dir: str | Path, config: SynthConfig = SynthConfig(), *, force: bool = False) -> Archive:
    """Generate the synthetic archive into `out_dir` (see the module docstring for the layout).

    If `out_dir` already holds a complete archive made with the same config and posecore
    version, nothing is written unless `force`. Otherwise the earlier archive's manifest goes
    first, so an interrupted run is never taken for a finished one, and the manifest is written
    last.

    Args:
        out_dir: the output folder (created if needed).
        config: what to generate.
        force: regenerate even if the archive is already there.

    Returns:
        The paths of the archive's files.
    """
    archive = Archive.at(out_dir, config)
    if not force and is_complete(archive):
        return archive
    archive.root.mkdir(parents=True, exist_ok=True)
    remove_previous(archive.root)
    for i, name in enumerate(config.video_names):
        rng = np.random.default_rng([config.seed, i])
        scene = make_scene(
            config.n_frames, config.width, config.height, config.fps, config.noise_std, config.occlusion_rate, rng
        )
        encode_video(scene.frames(), archive.videos[i], config.width, config.height, config.fps, config.crf)
        _write_labels(scene, i, archive)
        _write_ground_truth(scene, name, archive.ground_truth[i], config)
    sheet = pd.DataFrame({"video": config.video_names, "path": [str(path) for path in archive.videos]})
    with atomic_path(archive.video_sheet) as tmp:
        sheet.to_csv(tmp, sep="\t", index=False)
    with atomic_path(archive.manifest) as tmp:
        tmp.write_text(json.dumps(manifest_content(archive), indent=2) + "\n")
    return archive
