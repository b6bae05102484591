"""The report's Animals section, for videos with several animals per frame: counts, swap risks, track events.

For every video whose trajectories are multi-animal (`posecore.io.trajectories.is_multi_animal`):
how many animals were tracked in each frame (a figure over time, with the swap-risk frames
marked), the frames where the tracker flagged a likely identity swap (the frames to proofread,
and the ones `extract_outliers` picks first), and the frames where a track was born, lost,
found again or ended (`posecore.multi.tracking.track_events`). Videos are listed most
swap-risk frames first.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from posecore.io.trajectories import Instances, is_multi_animal
from posecore.multi.tracking import track_events
from posecore.qc.archive_html import figure_of, slug
from posecore.qc.html import ReportFigure, Section, esc, fmt, table
from posecore.qc.plots import _new_figure

LISTED = 20
"""Frames listed per video in the tables (swap risks, track events); the rest are counted."""


@dataclass(frozen=True)
class VideoAnimals:
    """The multi-animal QC of one video.

    Attributes:
        name: the video.
        frames: int64 (F,) frame indices.
        counts: int (F,) animals tracked in each frame.
        swap_frames: int (S,) frames with a swap-risk flag.
        tracks: the track names.
        events: `track_events`' table.
    """

    name: str
    frames: np.ndarray
    counts: np.ndarray
    swap_frames: np.ndarray
    tracks: tuple[str, ...]
    events: pd.DataFrame


def animals_qc(files: Mapping[str, Sequence[Path]], keypoints: Sequence[str] | None = None) -> list[VideoAnimals]:
    """The multi-animal QC of every video whose trajectory files have tracks, most swap-risk frames first."""
    found = []
    for name, paths in sorted(files.items()):
        if not paths or not is_multi_animal(pq.read_schema(paths[0])):
            continue
        rows = pd.concat([pd.read_parquet(path) for path in paths], ignore_index=True)
        animals = Instances.from_table(rows, keypoints, paths[0])
        present = animals.present
        tracks = tuple(sorted({str(t) for t in animals.track[present]} - {""}))
        found.append(
            VideoAnimals(
                name=name,
                frames=animals.frames,
                counts=present.sum(axis=1),
                swap_frames=animals.frames[(animals.swap_risk & present).any(axis=1)],
                tracks=tracks,
                events=track_events(animals),
            )
        )
    return sorted(found, key=lambda v: (-len(v.swap_frames), v.name))


def counts_figure(video: VideoAnimals) -> ReportFigure:
    """Animals tracked per frame over the video, swap-risk frames marked, track births and losses as ticks."""
    figure = _new_figure(7.0, 2.4)
    axes = figure.add_subplot()
    axes.step(video.frames, video.counts, where="mid", color="#4c72b0", linewidth=1.0, label="animals tracked")
    top = max(int(video.counts.max(initial=0)), 1)
    if len(video.swap_frames):
        axes.plot(video.swap_frames, np.full(len(video.swap_frames), top + 0.4), "|", color="#c44e52",
                  markersize=8, label="swap risk")  # fmt: skip
    lost = video.events[video.events["event"].isin(["lost", "ended"])]["frame"]
    born = video.events[video.events["event"].isin(["born", "found"])]["frame"]
    axes.plot(born, np.full(len(born), -0.4), "^", color="#55a868", markersize=4, label="track born / found")
    axes.plot(lost, np.full(len(lost), -0.4), "v", color="#8172b2", markersize=4, label="track lost / ended")
    axes.set_ylim(-0.9, top + 0.9)
    axes.set_yticks(range(top + 1))
    axes.set_xlabel("frame")
    axes.set_ylabel("animals")
    axes.legend(loc="upper right", fontsize="x-small", ncol=4, frameon=False)
    return figure_of(
        f"animals-counts--{slug(video.name)}",
        figure,
        f"{video.name}: animals tracked in each frame ({len(video.tracks)} tracks); red ticks: frames with a "
        "likely identity swap; triangles: frames where a track starts or comes back (up) and where it is lost "
        "or ends (down).",
        f"animals per frame in {video.name}",
    )


def animals_section(videos: Sequence[VideoAnimals]) -> Section:
    """The Animals section: a summary table, then per video its counts figure and its frames to check."""
    rows = []
    for v in videos:
        lost = int(v.events["event"].eq("lost").sum())
        low, high = (int(v.counts.min()), int(v.counts.max())) if len(v.counts) else (0, 0)
        mean = f"{v.counts.mean():.2f}" if len(v.counts) else "–"
        rows.append([esc(v.name), str(len(v.tracks)), mean, f"{low}–{high}", str(len(v.swap_frames)), str(lost)])
    parts = [
        '<p class="meta">Videos with several animals per frame, most swap-risk frames first. A swap risk is a '
        "frame where the tracker saw two animals close together, an assignment it could easily have made the "
        "other way, a track that jumped, or an animal hidden by another: proofread these frames (open the "
        "video's .slp export in SLEAP) or label them (extract_outliers picks them first).</p>",
        table(
            ["video", "tracks", "mean animals per frame", "range", "swap-risk frames", "tracks lost"], rows, "animals"
        ),
    ]
    figures = []
    for v in videos:
        figure = counts_figure(v)
        figures.append(figure)
        shown = ", ".join(map(str, v.swap_frames[:LISTED].tolist()))
        more = f" and {len(v.swap_frames) - LISTED} more" if len(v.swap_frames) > LISTED else ""
        events = v.events[v.events["event"].isin(["lost", "found"])]
        event_rows = [[str(r.frame), esc(r.track), r.event, str(r.gap)] for r in events.head(LISTED).itertuples()]
        parts += [
            f"<h4>{esc(v.name)}</h4>",
            figure.html(),
            f"<p>Swap-risk frames: {shown or 'none'}{more}.</p>",
            table(["frame", "track", "event", "frames missing"], event_rows, "events") if event_rows else "",
        ]
    return Section(title="Animals", body="\n".join(parts), figures=tuple(figures), clips=())


def multi_animal_model_section(dataset, metrics_json: Path | None) -> Section:
    """Labels and evaluation of a multi-animal (top-down) model: animals per labeled frame, OKS mAP, animal counts."""
    counts = dataset.instance_counts()
    low, high = (int(counts.min()), int(counts.max())) if len(counts) else (0, 0)
    parts = [
        f"<p>{len(counts)} labeled frames holding {int(counts.sum())} animals ({low} to {high} a frame), "
        f"{len(dataset.keypoint_names)} keypoints each; splits: "
        + ", ".join(f"{name} {int((dataset.split == name).sum())}" for name in ("train", "val", "test"))
        + ".</p>"
    ]
    if metrics_json is not None:
        metrics = json.loads(Path(metrics_json).read_text())
        animals = metrics.get("animals", {})
        rows = [
            ["OKS mAP, SLEAP's sigma (0.025)", fmt(metrics.get("map_sleap_sigma"), 3)],
            ["OKS mAP, DeepLabCut's sigma (0.1)", fmt(metrics.get("map_dlc_sigma"), 3)],
            ["labeled animals / detected / matched", f"{animals.get('labeled', '–')} / {animals.get('detected', '–')}"
             f" / {animals.get('matched', '–')}"],
            ["missed / false detections", f"{animals.get('missed', '–')} / {animals.get('false', '–')}"],
            ["RMSE of matched keypoints (px)", fmt(metrics.get("rmse_px_all"), 2)],
        ]  # fmt: skip
        parts += [
            f"<p>Evaluation on the {esc(metrics.get('split', 'test'))} frames:</p>",
            table(["measure", "value"], rows, "model"),
        ]
    return Section(title="Multi-animal model", body="\n".join(parts))
