"""Identities over time: one video's per-frame detections joined into at most `n_animals` tracks.

`track_video(detections, config)` takes one video's detection rows (`MULTI_ANIMAL_SCHEMA`,
`instance` numbering the detections of a frame, as the inference shards write them) and
returns its trajectories with `instance` the track's number and `track` its name, each row
keeping its score, and `swap_risk` set where an identity swap is likely. It runs once per
video, frame after frame, where the video's shards are joined (`track_poses` is the same on
arrays).

Each frame's detections are assigned to tracks by pose similarity to the tracks' recent poses
moved by their velocity (Hungarian), never making more than `n_animals` tracks; the steps, the
swap-risk rules and why: docs/multianimal.md, "Tracking".
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from posecore.errors import InputError
from posecore.io.trajectories import Instances

Count = Literal["known", "maximum"]


@dataclass(frozen=True)
class TrackerConfig:
    """How detections become tracks.

    Attributes:
        n_animals: the number of animals (count "known") or the most at once ("maximum").
        count: "known": exactly `n_animals` identities over the video, kept through any gap;
            "maximum": at most `n_animals` at once, a track unseen for `max_gap` frames ends.
        min_instance_score: detections scoring below this are not animals.
        min_keypoint_score: keypoints scoring below this do not count in the costs.
        max_cost: a detection farther than this (in track sizes) from a track's predicted
            pose is not matched to it in the first pass.
        gap_cost: the gate grows by this per frame the track went unseen.
        max_gap: with count "maximum", frames a track may go unseen before it ends.
        velocity_smoothing: weight of the newest step in the velocity average (0 to 1).
        max_prediction_frames: the motion prediction extrapolates at most this many frames.
        window: a detection is compared with this many of a track's last poses (the nearest counts).
        swap_margin: flag two animals whose exchanged assignment costs less than this more.
        close_distance: flag two animals whose centres are nearer than this, in track sizes.
        jump: flag a detection farther than this from its track's predicted pose, in track sizes.
        identity_weight: weight of identity scores in the cost, when given.
    """

    n_animals: int
    count: Count = "known"
    min_instance_score: float = 0.2
    min_keypoint_score: float = 0.2
    max_cost: float = 1.0
    gap_cost: float = 0.1
    max_gap: int = 30
    velocity_smoothing: float = 0.5
    max_prediction_frames: int = 5
    window: int = 5
    swap_margin: float = 0.25
    close_distance: float = 0.5
    jump: float = 0.5
    identity_weight: float = 1.0

    def __post_init__(self) -> None:
        problems = []
        if isinstance(self.n_animals, bool) or not isinstance(self.n_animals, int) or self.n_animals < 1:
            problems.append(f"tracking.n_animals must be an integer >= 1, got {self.n_animals!r}")
        if self.count not in ("known", "maximum"):
            problems.append(f"tracking.count must be 'known' or 'maximum', got {self.count!r}")
        for name in ("min_instance_score", "min_keypoint_score", "max_cost", "gap_cost", "swap_margin",
                     "close_distance", "jump", "identity_weight"):  # fmt: skip
            if getattr(self, name) < 0:
                problems.append(f"tracking.{name} must be >= 0, got {getattr(self, name)!r}")
        if (
            self.max_gap < 1
            or self.window < 1
            or self.max_prediction_frames < 0
            or not 0 < self.velocity_smoothing <= 1
        ):
            problems.append(
                "tracking.max_gap and window must be >= 1, max_prediction_frames >= 0, velocity_smoothing in (0, 1]"
            )
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<config>") -> TrackerConfig:
        """The config from a mapping (the workflow's `tracking` section); an unknown key is an InputError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(
                source, f"unknown key; known: {', '.join(sorted(known))}", where=f"key tracking.{unknown[0]}"
            )
        try:
            return cls(**data)
        except (TypeError, ValueError) as error:
            raise InputError(source, str(error), where="key tracking") from None


@dataclass(frozen=True)
class Tracked:
    """Which track each detection joined.

    Attributes:
        track_of: int (F, N) the track of each detection slot, -1 where it joined none (no
            animal, scored too low, or beyond the `n_animals` best).
        swap_risk: bool (F, N) detections flagged as a likely identity swap.
        n_tracks: tracks made.
    """

    track_of: np.ndarray
    swap_risk: np.ndarray
    n_tracks: int


@dataclass
class _Track:
    """A track's state while tracking."""

    history: list[tuple[int, np.ndarray]]  # (frame, pose (K, 2)) of its last poses, newest last
    size: float  # its extent: the longest distance between two of its keypoints, px (running mean)
    velocity: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(2))  # px per frame
    identity: np.ndarray | None = None  # running mean of its detections' identity scores

    @property
    def seen(self) -> int:
        """The frame it was last seen in."""
        return self.history[-1][0]


def track_poses(
    xy: np.ndarray,
    score: np.ndarray,
    instance_score: np.ndarray,
    config: TrackerConfig,
    identity: np.ndarray | None = None,
) -> Tracked:
    """Join per-frame detections into tracks (module docstring), frame after frame.

    Args:
        xy: float (F, N, K, 2) detections' keypoints, NaN in empty slots; frames consecutive.
        score: float (F, N, K) keypoint scores.
        instance_score: float (F, N) detection scores.
        config: the tracker's settings.
        identity: float (F, N, M) optional identity scores (probabilities over M identities).

    Returns:
        Each detection's track and swap flag.
    """
    n_frames, n_slots = xy.shape[:2]
    track_of = np.full((n_frames, n_slots), -1, dtype=np.int64)
    risk = np.zeros((n_frames, n_slots), dtype=bool)
    tracks: list[_Track] = []
    usable = np.isfinite(xy).all(axis=-1) & (np.nan_to_num(score, nan=-1.0) >= config.min_keypoint_score)  # (F, N, K)
    for t in range(n_frames):
        scored = np.nan_to_num(instance_score[t], nan=-1.0) >= config.min_instance_score
        candidates = np.flatnonzero(usable[t].any(axis=-1) & scored)
        candidates = candidates[np.argsort(-instance_score[t, candidates], kind="stable")][: config.n_animals]
        if not len(candidates):
            continue
        alive = [j for j, track in enumerate(tracks) if config.count == "known" or t - track.seen <= config.max_gap]
        points, masks = xy[t, candidates], usable[t, candidates]  # (n, K, 2), (n, K)
        ids = None if identity is None else identity[t, candidates]
        cost, newest = _costs(points, masks, [tracks[j] for j in alive], t, config, ids)  # (n, len(alive)) each
        gate = np.array([config.max_cost + config.gap_cost * (t - tracks[j].seen - 1) for j in alive])
        pairs = _assign(np.where(cost <= gate[None, :], cost, np.nan))
        forced: list[tuple[int, int]] = []
        left = [i for i in range(len(candidates)) if i not in {p for p, _ in pairs}]
        while left and len(alive) < config.n_animals:  # known count: every track is alive, so at most n_animals
            i = left.pop(0)  # best-scoring first
            tracks.append(_Track([(t, points[i].copy())], _size(points[i], masks[i])))
            alive.append(len(tracks) - 1)
            pairs.append((i, len(alive) - 1))
            cost = np.concatenate([cost, np.full((len(candidates), 1), np.nan)], axis=1)
            newest = np.concatenate([newest, np.zeros((len(candidates), 1))], axis=1)
        if left:
            free = [c for c in range(len(alive)) if c not in {q for _, q in pairs}]
            sub = _assign(cost[np.ix_(left, free)])
            forced = [(left[a], free[b]) for a, b in sub]
            pairs += forced
        flagged = _swap_risk(pairs, cost, points, masks, [tracks[alive[c]] for _, c in pairs], config)
        taken = {c for _, c in pairs}
        hidden = [tracks[alive[c]] for c in range(len(alive)) if c not in taken and t - tracks[alive[c]].seen <= 1]
        flagged = [
            f or _near_hidden(points[i], masks[i], hidden, t, config) for f, (i, _) in zip(flagged, pairs, strict=True)
        ]
        for (i, c), flag in zip(pairs, flagged, strict=True):
            j = alive[c]
            track_of[t, candidates[i]] = j
            risk[t, candidates[i]] = flag or (i, c) in forced or bool(newest[i, c] > config.jump)
            _update(tracks[j], points[i], masks[i], t, config, None if ids is None else ids[i])
    return Tracked(track_of, risk, len(tracks))


def _costs(
    points: np.ndarray,
    masks: np.ndarray,
    tracks: list[_Track],
    t: int,
    config: TrackerConfig,
    identity: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cost (n, T) of each detection for each track, in track sizes (module docstring, step 3).

    Returns:
        The cost against the nearest of each track's recent poses, and against its newest one.
    """
    cost = np.zeros((len(points), len(tracks)))
    newest = np.zeros((len(points), len(tracks)))
    for c, track in enumerate(tracks):
        nearest = np.full(len(points), np.inf)
        for seen, pose in reversed(track.history):
            predicted = pose + track.velocity * min(t - seen, config.max_prediction_frames)  # (K, 2)
            known = np.isfinite(predicted).all(axis=-1)  # (K,), False for keypoints the track never had
            both = masks & known[None]  # (n, K)
            distance = np.linalg.norm(np.where(both[..., None], points - predicted[None], 0.0), axis=-1)  # (n, K)
            common = both.sum(axis=1)
            centres = np.linalg.norm(_centre(points, masks) - predicted[known].mean(axis=0), axis=-1)
            this = np.where(common > 0, distance.sum(axis=1) / np.maximum(common, 1), centres) / track.size
            if seen == track.seen:
                newest[:, c] = this
            nearest = np.minimum(nearest, this)
        cost[:, c] = nearest
        if identity is not None and track.identity is not None:
            cost[:, c] += config.identity_weight * (1.0 - identity @ track.identity)
    return cost, newest


def _centre(points: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Mean of each detection's usable keypoints, (n, 2)."""
    weight = masks[..., None].astype(float)
    return (np.where(masks[..., None], points, 0.0)).sum(axis=1) / np.maximum(weight.sum(axis=1), 1.0)


def _size(points: np.ndarray, mask: np.ndarray, fallback: float = 16.0) -> float:
    """The animal's extent in pixels: the longest distance between two usable keypoints (at least 4 px)."""
    usable = points[mask]
    if len(usable) < 2:
        return fallback
    return float(max(np.linalg.norm(usable[:, None] - usable[None], axis=-1).max(), 4.0))


def _assign(cost: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-cost pairs (row, column) among the finite entries of `cost`, as many as possible."""
    from scipy.optimize import linear_sum_assignment  # imported on first use: the config check needs no scipy

    finite = np.isfinite(cost)
    if cost.size == 0 or not finite.any():
        return []
    big = (np.abs(np.where(finite, cost, 0.0)).sum() + 1.0) * max(1, min(cost.shape))
    rows, cols = linear_sum_assignment(np.where(finite, cost, big))
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if finite[r, c]]


def _swap_risk(
    pairs: list[tuple[int, int]],
    cost: np.ndarray,
    points: np.ndarray,
    masks: np.ndarray,
    tracks: list[_Track],
    config: TrackerConfig,
) -> list[bool]:
    """Whether each assigned pair is at risk of a swap: another animal close by, or a small assignment margin."""
    flags = [False] * len(pairs)
    centres = _centre(points, masks)
    for a, b in itertools.combinations(range(len(pairs)), 2):
        (i, c), (k, d) = pairs[a], pairs[b]
        size = 0.5 * (tracks[a].size + tracks[b].size)
        close = np.linalg.norm(centres[i] - centres[k]) < config.close_distance * size
        exchanged = cost[i, d] + cost[k, c] - cost[i, c] - cost[k, d]
        if close or (np.isfinite(exchanged) and exchanged < config.swap_margin):
            flags[a] = flags[b] = True
    return flags


def _near_hidden(points: np.ndarray, mask: np.ndarray, hidden: list[_Track], t: int, config: TrackerConfig) -> bool:
    """Whether a detection (K, 2) is within `close_distance` of a track that was seen last frame and not in this one."""
    centre = _centre(points[None], mask[None])[0]
    for track in hidden:
        seen, pose = track.history[-1]
        predicted = pose + track.velocity * min(t - seen, config.max_prediction_frames)
        known = np.isfinite(predicted).all(axis=-1)
        if known.any() and np.linalg.norm(predicted[known].mean(axis=0) - centre) < config.close_distance * track.size:
            return True
    return False


def _update(track: _Track, points: np.ndarray, mask: np.ndarray, t: int, config: TrackerConfig, identity) -> None:
    """Move a track to its new detection: pose history, velocity, size and identity scores."""
    seen, last = track.history[-1]
    common = mask & np.isfinite(last).all(axis=-1)
    shift = (points[common] - last[common]).mean(axis=0) if common.any() else np.zeros(2)
    if t > seen:
        step = shift / (t - seen)  # px per frame
        alpha = config.velocity_smoothing
        jumped = np.linalg.norm(shift) > config.max_cost * track.size  # not motion: a wrong detection, or a new one
        track.velocity = np.zeros(2) if jumped else alpha * step + (1 - alpha) * track.velocity
    pose = np.where(mask[:, None], points, last + shift)  # unseen keypoints move with the animal
    kept = track.history if t > seen else track.history[:-1]  # a second detection in one frame replaces the first
    track.history = [*kept[max(0, len(kept) - config.window + 1) :], (t, pose)]
    track.size = 0.8 * track.size + 0.2 * _size(points, mask, track.size)
    if identity is not None:
        track.identity = identity if track.identity is None else 0.8 * track.identity + 0.2 * identity


def track_video(
    detections: pa.Table | Any,
    config: TrackerConfig,
    keypoint_names: list[str] | None = None,
    source: str = "<detections>",
) -> pa.Table:
    """Track one video's detection rows into its trajectories (`MULTI_ANIMAL_SCHEMA`).

    Args:
        detections: the video's detection rows (pyarrow or pandas), `instance` numbering the
            detections of each frame; every frame of the video has rows.
        config: the tracker's settings.
        keypoint_names: the K keypoints in order; default the table's order.
        source: the detections' file, named in errors.

    Returns:
        One row per (frame, track, keypoint), frame-major: `instance` the track's number (0 to
        n_tracks - 1, in order of appearance), `track` its name (track_0, track_1, ...), x, y
        and scores of its detection in that frame, NaN where the track has none, and
        `swap_risk`.
    """
    found = Instances.from_table(detections, keypoint_names, source)
    tracked = track_poses(found.xy, found.score, found.instance_score, config)
    n_frames, n_tracks, k = len(found.frames), tracked.n_tracks, len(found.keypoint_names)
    xy = np.full((n_frames, n_tracks, k, 2), np.nan)
    score = np.full((n_frames, n_tracks, k), np.nan)
    instance_score = np.full((n_frames, n_tracks), np.nan)
    risk = np.zeros((n_frames, n_tracks), dtype=bool)
    rows, slots = np.nonzero(tracked.track_of >= 0)
    columns = tracked.track_of[rows, slots]
    xy[rows, columns], score[rows, columns] = found.xy[rows, slots], found.score[rows, slots]
    instance_score[rows, columns] = found.instance_score[rows, slots]
    risk[rows, columns] = tracked.swap_risk[rows, slots]
    names = np.array([f"track_{j}" for j in range(n_tracks)], dtype=object)
    present = np.isfinite(xy).all(axis=-1).any(axis=-1)  # (F, T)
    result = Instances(
        found.frames, found.times, xy, score, instance_score, np.where(present, names, ""), risk, found.keypoint_names
    )
    return result.to_table()


def track_events(found: Instances) -> pd.DataFrame:
    """Where each track starts, is lost, is found again and ends.

    Args:
        found: one video's tracked animals (`Instances.from_table` of `track_video`'s rows).

    Returns:
        One row per event, in frame order: frame, track, event ("born": first frame, "lost":
        last frame before a gap, "found": first frame after one, "ended": last frame), gap
        (frames missing before "found", after "lost"; 0 otherwise).
    """
    rows = []
    present = found.present  # (F, I)
    for i in range(present.shape[1]):
        seen = np.flatnonzero(present[:, i])
        if not len(seen):
            continue
        name = next((str(t) for t in found.track[seen, i] if t), f"instance_{i}")
        frames = found.frames[seen]
        gaps = np.flatnonzero(np.diff(seen) > 1)
        rows.append((int(frames[0]), name, "born", 0))
        for g in gaps:
            missing = int(seen[g + 1] - seen[g] - 1)
            rows += [(int(frames[g]), name, "lost", missing), (int(frames[g + 1]), name, "found", missing)]
        rows.append((int(frames[-1]), name, "ended", 0))
    events = pd.DataFrame(rows, columns=["frame", "track", "event", "gap"])
    return events.sort_values(["frame", "track"], kind="stable").reset_index(drop=True)
