"""Writing a synthetic social archive: videos of several animals, exact ground truth with identities, maDLC labels.

Layout under the output folder (as `posecore.synth.archive`'s, labels in multi-animal
DeepLabCut's layout):

    videos/{name}.mp4                         H.264 yuv420p
    ground_truth/{name}.parquet               one row per (frame, animal, keypoint), exact positions
    labeled-data/{name}/img{frame:05d}.png    labeled frames, as decoded from the mp4
    labeled-data/{name}/CollectedData_{scorer}.csv   individuals animal0, animal1, ...
    videos.tsv                                the video sheet (video, path)
    synth.json                                the manifest, written last: its presence means complete
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from posecore import __version__
from posecore.io.atomic import atomic_path
from posecore.synth.animal import KEYPOINTS
from posecore.synth.archive import Archive, is_complete, layout, manifest_content, remove_previous
from posecore.synth.media import decode_frames, encode_video, write_pngs
from posecore.synth.social import SocialConfig, SocialScene, make_social_scene


@dataclass(frozen=True)
class SocialArchiveConfig:
    """What social archive to make; the same config always makes the same archive.

    Attributes:
        scene: each video's scene settings; video i is made with seed `scene.seed + i`.
        n_videos: number of videos.
        n_labeled_per_video: labeled frames per video: half spread evenly over the video, half
            at encounters (the frames that need labels most), all distinct.
        scorer: the labeler's name in the DeepLabCut files.
        crf: x264 constant rate factor.
    """

    scene: SocialConfig = field(default_factory=SocialConfig)
    n_videos: int = 1
    n_labeled_per_video: int = 60
    scorer: str = "synth"
    crf: int = 16

    def __post_init__(self) -> None:
        if self.n_videos < 1 or not 0 <= self.n_labeled_per_video <= self.scene.n_frames:
            raise ValueError(
                f"n_videos ({self.n_videos}) must be at least 1 and n_labeled_per_video ({self.n_labeled_per_video}) "
                f"in [0, {self.scene.n_frames}]"
            )
        if not 0 <= self.crf <= 51 or not self.scorer or "/" in self.scorer:
            raise ValueError(f"crf ({self.crf}) must be in [0, 51] and scorer ({self.scorer!r}) a file name part")

    @property
    def video_names(self) -> tuple[str, ...]:
        """Names of the videos: social-000, social-001, ..."""
        return tuple(f"social-{i:03d}" for i in range(self.n_videos))

    def scene_config(self, video: int) -> SocialConfig:
        """The scene settings of video number `video`."""
        return dataclasses.replace(self.scene, seed=self.scene.seed + video)


@dataclass(frozen=True)
class SocialArchive(Archive):
    """The files of a social archive under `root` (`Archive`'s layout), and its labeled frames.

    Attributes:
        labeled: the labeled frames of each video, sorted.
    """

    labeled: tuple[tuple[int, ...], ...] = ()

    @classmethod
    def at(cls, root: str | Path, config: SocialArchiveConfig) -> SocialArchive:
        """Where the files of the archive made with `config` are (its scenes are made to pick the labeled frames)."""
        labeled = tuple(
            tuple(int(f) for f in labeled_frames(scene_of(config, i), config.n_labeled_per_video))
            for i in range(config.n_videos)
        )
        return cls(config=config, labeled=labeled, **layout(Path(root), config.video_names, config.scorer, labeled))


def scene_of(config: SocialArchiveConfig, video: int) -> SocialScene:
    """The scene of video number `video` (deterministic: its config's seed)."""
    return make_social_scene(config.scene_config(video))


def labeled_frames(scene: SocialScene, n: int) -> np.ndarray:
    """`n` distinct frames to label, sorted: half at the scene's encounters, the rest spread evenly."""
    n_frames = len(scene.points)
    met = [frame for frame, _, _ in scene.encounters()]
    at_encounters = [met[int(i)] for i in np.linspace(0, len(met) - 1, min(n // 2, len(met))).round()] if met else []
    rest = [int(f) for f in np.linspace(0, n_frames - 1, n).round() if int(f) not in set(at_encounters)]
    chosen = sorted(set(at_encounters) | set(rest[: n - len(set(at_encounters))]))
    for frame in range(n_frames):  # fill up where rounding made duplicates
        if len(chosen) >= n:
            break
        if frame not in chosen:
            chosen.append(frame)
    return np.array(sorted(chosen[:n]), dtype=np.int64)


def make_social_archive(
    out_dir: str | Path, config: SocialArchiveConfig = SocialArchiveConfig(), *, force: bool = False
) -> SocialArchive:
    """Generate the social archive into `out_dir` (see the module docstring), unless it is already there.

    Args:
        out_dir: the output folder (created if needed).
        config: what to generate.
        force: regenerate even if the archive is already there.
    """
    archive = SocialArchive.at(out_dir, config)
    if not force and is_complete(archive):
        return archive
    archive.root.mkdir(parents=True, exist_ok=True)
    remove_previous(archive.root)
    for i, name in enumerate(config.video_names):
        scene = scene_of(config, i)
        scene_config = scene.config
        encode_video(
            scene.frames(), archive.videos[i], scene_config.width, scene_config.height, scene_config.fps, config.crf
        )
        visible = scene.visible  # (T, A, K)
        _write_labels(scene, visible, archive, i)
        _write_ground_truth(scene, visible, name, archive.ground_truth[i])
    sheet = pd.DataFrame({"video": config.video_names, "path": [str(path) for path in archive.videos]})
    with atomic_path(archive.video_sheet) as tmp:
        sheet.to_csv(tmp, sep="\t", index=False)
    with atomic_path(archive.manifest) as tmp:
        tmp.write_text(json.dumps(manifest_content(archive), indent=2) + "\n")
    return archive


def _write_labels(scene: SocialScene, visible: np.ndarray, archive: SocialArchive, video: int) -> None:
    """The labeled frames' PNGs (decoded from the written mp4) and the multi-animal DeepLabCut CSV."""
    config, scene_config = archive.config, scene.config
    frames = np.array(archive.labeled[video], dtype=np.int64)
    write_pngs(
        decode_frames(archive.videos[video], frames, scene_config.width, scene_config.height), archive.images[video]
    )
    labels = scene.keypoints[frames].copy()  # (N, A, K, 2)
    labels[~visible[frames]] = np.nan  # a labeler leaves hidden keypoints empty
    columns = pd.MultiIndex.from_product(
        [[config.scorer], scene_config.track_names, KEYPOINTS, ["x", "y"]],
        names=["scorer", "individuals", "bodyparts", "coords"],
    )
    rows = [path.relative_to(archive.root).as_posix() for path in archive.images[video]]
    table = pd.DataFrame(labels.reshape(len(frames), len(columns)), index=rows, columns=columns)  # (N, A * K * 2)
    with atomic_path(archive.label_files[video]) as tmp:
        table.to_csv(tmp)


def _write_ground_truth(scene: SocialScene, visible: np.ndarray, name: str, path: Path) -> None:
    """One row per (frame, animal, keypoint): video, frame, time_s, instance, track, keypoint, x, y, visible."""
    keypoints = scene.keypoints  # (T, A, K, 2)
    n_frames, n_animals, n_keypoints = keypoints.shape[:3]
    n = n_frames * n_animals * n_keypoints
    frame = np.repeat(np.arange(n_frames, dtype=np.int64), n_animals * n_keypoints)  # frame-major
    instance = np.tile(np.repeat(np.arange(n_animals, dtype=np.int64), n_keypoints), n_frames)
    table = pa.table(
        {
            "video": pa.array([name] * n, pa.string()),
            "frame": frame,
            "time_s": frame / scene.config.fps,
            "instance": instance,
            "track": pa.array([scene.config.track_names[i] for i in instance], pa.string()),
            "keypoint": pa.array(list(KEYPOINTS) * (n_frames * n_animals), pa.string()),
            "x": keypoints[..., 0].reshape(-1),
            "y": keypoints[..., 1].reshape(-1),
            "visible": visible.reshape(-1),
        }
    )
    meta = {b"posecore.synth": json.dumps({"posecore_version": __version__, "config": asdict(scene.config)}).encode()}
    with atomic_path(path) as tmp:
        pq.write_table(table.replace_schema_metadata(meta), tmp)
