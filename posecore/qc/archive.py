"""Archive QC: how well every video of the archive went, worst first, with frames from its worst stretches.

`archive_qc` reads the trajectories one video at a time (so it scales to thousands of videos)
and measures, per video: frames with trajectories against frames probed, the share of
low-score points per keypoint, implausible jumps (a point moving further than
`jump_fraction` of the image diagonal between consecutive frames), gaps (runs of frames in which
a point scores low or is missing), inference throughput from the `infer` jobs' benchmarks, and
the failure message of a video that has no trajectories. `posecore.qc.archive_html.archive_section`
turns that into the report's section: the failed videos with their errors, a summary table
sorted worst first, and for the worst few videos and a few samples, the trajectories, the frames
of the stretch with the most flagged points (read exactly) with the points drawn, and a short
labeled MP4 clip.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow.parquet as pq

from posecore.errors import InputError
from posecore.qc import plots
from posecore.qc.inputs import file_provenance, find_trajectory_files, read_video_trajectories
from posecore.qc.tracks import Tracks, flag_points, gap_lengths, tracks_from_table, worst_window

Status = Literal["failed", "missing", "incomplete", "ok"]
"""failed: no trajectories, an error in its logs; missing: no trajectories, no error known;
incomplete: fewer frames with trajectories than probed; ok: every probed frame has trajectories."""

STATUS_ORDER: tuple[Status, ...] = ("failed", "missing", "incomplete", "ok")
"""Statuses from worst to best: the first key of the archive's sort order."""


@dataclass(frozen=True)
class ArchiveConfig:
    """Thresholds of the archive QC and how much of it the page shows.

    Attributes:
        score_threshold: points scoring below it (or without a score) count as low.
        jump_fraction: a point moving further than this fraction of the image diagonal between
            consecutive frames is an implausible jump (0.1: 80 px in a 640x480 video).
        min_gap_frames: runs of at least this many consecutive low frames of one point count as gaps.
        n_worst: videos (with trajectories, worst first) shown with frames and a clip.
        n_samples: further videos, spread over the rest of the order, shown from their middle.
        n_panels: frames in each video's panel figure.
        clip_seconds: length of a stretch, and of its clip.
        clip_max_width: clips are shrunk to at most this width in pixels (never enlarged).
        clip_max_fps: faster videos keep every n-th frame in their clip, to stay at or below this rate.
        embed_max_bytes: a clip up to this size is embedded in the page, a larger one only written as a file.
        max_embedded_clips: at most this many clips are embedded.
    """

    score_threshold: float = 0.3
    jump_fraction: float = 0.1
    min_gap_frames: int = 3
    n_worst: int = 3
    n_samples: int = 2
    n_panels: int = 6
    clip_seconds: float = 3.0
    clip_max_width: int = 480
    clip_max_fps: float = 30.0
    embed_max_bytes: int = 300_000
    max_embedded_clips: int = 6

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value, integer = getattr(self, f.name), f.type == "int"
            if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
                raise ValueError(f"qc.{f.name} must be {'an integer' if integer else 'a number'}, got {value!r}")
        problems = [
            f"qc.{name} must be {rule}, got {getattr(self, name)!r}"
            for name, ok, rule in (
                ("score_threshold", self.score_threshold >= 0, "at least 0"),
                ("jump_fraction", 0 < self.jump_fraction <= 1, "in (0, 1]"),
                ("min_gap_frames", self.min_gap_frames >= 1, "at least 1"),
                ("n_worst", self.n_worst >= 0, "at least 0"),
                ("n_samples", self.n_samples >= 0, "at least 0"),
                ("n_panels", self.n_panels >= 1, "at least 1"),
                ("clip_seconds", self.clip_seconds > 0, "positive"),
                ("clip_max_width", self.clip_max_width >= 2, "at least 2"),
                ("clip_max_fps", self.clip_max_fps > 0, "positive"),
                ("embed_max_bytes", self.embed_max_bytes >= 0, "at least 0"),
                ("max_embedded_clips", self.max_embedded_clips >= 0, "at least 0"),
            )
            if not ok
        ]
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str | Path = "<config>") -> ArchiveConfig:
        """The config from the workflow's `qc` mapping; an unknown key or a bad value is an InputError."""
        known = {f.name for f in dataclasses.fields(cls)}
        for key in data:
            if key not in known:
                raise InputError(source, f"unknown key; known: {', '.join(sorted(known))}", where=f"key qc.{key}")
        try:
            return cls(**data)
        except ValueError as error:
            raise InputError(source, str(error), where="key qc") from None


@dataclass(frozen=True)
class VideoQC:
    """The archive QC of one video.

    Attributes:
        name: the video's name.
        status: see `Status`.
        probe: its probe JSON, None when it has none.
        n_frames: frames with trajectories.
        n_instances: animals per frame in its trajectories.
        n_points: points (frame, instance, keypoint) over frames 0 .. last frame with trajectories.
        n_low: those that scored low or are missing.
        fps: frames per second (the probe's, else from the trajectories' times); None when unknown.
        low_fraction: share of points (frame, instance, keypoint) that scored low or are missing.
        low_by_keypoint: that share per keypoint.
        median_score: median score of the scored points.
        n_jumps: points that jumped further than `jump_px` from the previous frame.
        jump_px: the jump threshold used, in pixels.
        n_gaps: runs of at least `min_gap_frames` consecutive low frames of one point.
        longest_gap: the longest such run, in frames.
        flagged_fraction: share of points that are low or jumped: the sort key within a status.
        window: [start, stop) frames of its worst stretch (the most flagged points).
        window_flags: flagged points in that stretch.
        infer_seconds: wall seconds of inference spent on it (`posecore.qc.inputs.read_infer_seconds`);
            None without benchmarks.
        failure: why it has no trajectories, from its logs.
        provenance: the metadata of its first trajectory file.
    """

    name: str
    status: Status
    probe: Mapping[str, Any] | None = None
    n_frames: int = 0
    n_instances: int = 0
    fps: float | None = None
    n_points: int = 0
    n_low: int = 0
    low_fraction: float | None = None
    low_by_keypoint: Mapping[str, float] = field(default_factory=dict)
    median_score: float | None = None
    n_jumps: int = 0
    jump_px: float | None = None
    n_gaps: int = 0
    longest_gap: int = 0
    flagged_fraction: float | None = None
    window: tuple[int, int] | None = None
    window_flags: int = 0
    infer_seconds: float | None = None
    failure: str | None = None
    provenance: Mapping[str, str] = field(default_factory=dict)

    @property
    def n_probed(self) -> int | None:
        """Frames the probe counted; None without a probe."""
        value = (self.probe or {}).get("n_frames")
        return value if isinstance(value, int) else None

    @property
    def throughput_fps(self) -> float | None:
        """Frames inferred per second of inference job time."""
        return self.n_frames / self.infer_seconds if self.infer_seconds and self.n_frames else None

    def sort_key(self) -> tuple:
        """Worst first: by status, then the share of flagged points, jumps and longest gap, descending."""
        flagged = self.flagged_fraction if self.flagged_fraction is not None else 0.0
        return (STATUS_ORDER.index(self.status), -flagged, -self.n_jumps, -self.longest_gap, self.name)


def _fps(probe: Mapping[str, Any] | None, tracks: Tracks) -> float | None:
    """The probe's frame rate, else one estimated from the trajectories' times."""
    fps = (probe or {}).get("fps")
    if isinstance(fps, int | float) and fps > 0:
        return float(fps)
    known = np.flatnonzero(np.isfinite(tracks.times))
    if len(known) > 1 and tracks.times[known[-1]] > tracks.times[known[0]]:
        return float((known[-1] - known[0]) / (tracks.times[known[-1]] - tracks.times[known[0]]))
    return None


def _diagonal(probe: Mapping[str, Any] | None, tracks: Tracks) -> float:
    """The image diagonal in pixels: from the probe's size, else from the points' extent."""
    width, height = (probe or {}).get("width"), (probe or {}).get("height")
    if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
        return float(np.hypot(width, height))
    finite = tracks.xy[np.isfinite(tracks.xy).all(axis=-1)]  # (M, 2)
    return float(np.hypot(*(finite.max(axis=0) + 1.0))) if len(finite) else 1.0


def measure_video(
    name: str,
    tracks: Tracks,
    keypoints: Sequence[str],
    config: ArchiveConfig,
    probe: Mapping[str, Any] | None = None,
) -> VideoQC:
    """The QC numbers of one video with trajectories (see `VideoQC`)."""
    jump_px = config.jump_fraction * _diagonal(probe, tracks)
    low, jump = flag_points(tracks, config.score_threshold, jump_px)
    flagged = low | jump  # (F, I, K)
    gaps = gap_lengths(low)
    fps = _fps(probe, tracks)
    window = worst_window(flagged.sum(axis=(1, 2)), round(config.clip_seconds * (fps or 30.0)))
    n_frames = int(tracks.present.sum())
    probed = (probe or {}).get("n_frames")
    status: Status = "incomplete" if isinstance(probed, int) and n_frames < probed else "ok"
    scores = tracks.score[np.isfinite(tracks.score)]
    return VideoQC(
        name=name,
        status=status,
        probe=probe,
        n_frames=n_frames,
        n_instances=len(tracks.instances),
        fps=fps,
        n_points=int(low.size),
        n_low=int(low.sum()),
        low_fraction=float(low.mean()) if low.size else None,
        low_by_keypoint={k: float(low[..., i].mean()) for i, k in enumerate(keypoints)} if low.size else {},
        median_score=float(np.median(scores)) if scores.size else None,
        n_jumps=int(jump.sum()),
        jump_px=jump_px,
        n_gaps=int((gaps >= config.min_gap_frames).sum()),
        longest_gap=int(gaps.max()) if gaps.size else 0,
        flagged_fraction=float(flagged.mean()) if flagged.size else None,
        window=window,
        window_flags=int(flagged[window[0] : window[1]].sum()),
    )


@dataclass(frozen=True)
class ArchiveQC:
    """The archive QC of every video.

    Attributes:
        videos: one `VideoQC` per video, worst first (`VideoQC.sort_key`).
        keypoints: the K keypoint names, in colour order.
        config: the thresholds used.
        score_counts: int64 (K, len(plots.SCORE_BINS) - 1) score histogram over all videos.
        files: each video's trajectory files, for reading the shown videos again.
    """

    videos: tuple[VideoQC, ...]
    keypoints: tuple[str, ...]
    config: ArchiveConfig
    score_counts: np.ndarray
    files: Mapping[str, tuple[Path, ...]]

    def count(self, *statuses: Status) -> int:
        """Number of videos with one of `statuses`."""
        return sum(video.status in statuses for video in self.videos)


def archive_qc(
    trajectories_dir: Path,
    *,
    keypoints: Sequence[str] | None = None,
    probes: Mapping[str, Mapping[str, Any]] | None = None,
    videos: Sequence[str] | None = None,
    failures: Mapping[str, str] | None = None,
    infer_seconds: Mapping[str, float] | None = None,
    config: ArchiveConfig = ArchiveConfig(),
) -> ArchiveQC:
    """Measure every video of the archive, one at a time.

    Args:
        trajectories_dir: the model's trajectories, `video=<name>/*.parquet`; may not exist
            (every video failed).
        keypoints: the model's keypoints; None takes them from the first video's rows.
        probes: each video's probe JSON, by name (failed probes have none).
        videos: every video of the archive (the sheet); None: those with probes or trajectories.
            A video given nowhere but here is still listed (as failed or missing).
        failures: why a video has no trajectories (`posecore.qc.failures.find_failures`).
        infer_seconds: wall seconds of inference of each video (`posecore.qc.inputs.read_infer_seconds`).
        config: thresholds and what to show.

    Returns:
        The QC of every video, worst first.

    Raises:
        InputError: a trajectory file that breaks the contract, naming it.
    """
    probes, failures, infer_seconds = probes or {}, failures or {}, infer_seconds or {}
    files = find_trajectory_files(trajectories_dir)
    if keypoints is None:
        keypoints = _keypoints_of(next(iter(files.values()))[0]) if files else []
    counts = np.zeros((len(keypoints), len(plots.SCORE_BINS) - 1), dtype=np.int64)
    measured = []
    for name in sorted(set(videos or ()) | set(probes) | set(files)):
        probe = probes.get(name)
        if name not in files:
            status: Status = "failed" if name in failures else "missing"
            measured.append(VideoQC(name=name, status=status, probe=probe, failure=failures.get(name)))
            continue
        tracks = tracks_from_table(read_video_trajectories(files[name], keypoints), keypoints)
        _add_scores(counts, tracks)
        video = measure_video(name, tracks, keypoints, config, probe)
        provenance = file_provenance(files[name][0])
        measured.append(dataclasses.replace(video, infer_seconds=infer_seconds.get(name), provenance=provenance))
    return ArchiveQC(
        videos=tuple(sorted(measured, key=VideoQC.sort_key)),
        keypoints=tuple(keypoints),
        config=config,
        score_counts=counts,
        files={name: tuple(paths) for name, paths in files.items()},
    )


def _keypoints_of(path: Path) -> list[str]:
    """Keypoint names in a trajectory file, in order of appearance (the model's order)."""
    return list(dict.fromkeys(str(k) for k in pq.read_table(path, columns=["keypoint"]).column(0).to_pylist()))


def _add_scores(counts: np.ndarray, tracks: Tracks) -> None:
    """Add the score histogram of one video's scored points to `counts` (K, bins), in place."""
    for k in range(counts.shape[0]):
        scores = tracks.score[..., k]
        counts[k] += np.histogram(np.clip(scores[np.isfinite(scores)], 0.0, 1.0), bins=plots.SCORE_BINS)[0]
