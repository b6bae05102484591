"""The archive section of the report, all its HTML: tables, the frames, trajectories and clip of a shown video.

`archive_section` puts the pieces together from the `ArchiveQC` that `posecore.qc.archive`
measured; this module takes its data types from there, never the other way round.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from matplotlib.figure import Figure

from posecore.errors import InputError
from posecore.io.video import VideoInfo
from posecore.io.video import probe as probe_video
from posecore.qc import plots
from posecore.qc.archive import ArchiveConfig, ArchiveQC, VideoQC
from posecore.qc.clips import clip_size, panel_grid, read_labeled_stretch
from posecore.qc.html import ReportClip, ReportFigure, Section, esc, fmt, table
from posecore.qc.inputs import read_video_trajectories
from posecore.qc.tracks import flag_points, tracks_from_table

Role = Literal["worst", "sample"]


def figure_of(name: str, figure: Figure, caption: str, alt: str) -> ReportFigure:
    """A matplotlib figure as a `ReportFigure` (PNG at the report's DPI)."""
    return ReportFigure(name=name, png=plots.figure_to_png(figure), caption=caption, alt=alt)


def slug(name: str) -> str:
    """A video's name as a figure-name part: lowercase `[a-z0-9_.-]`, with a short hash if it had to change."""
    plain = re.sub(r"[^a-z0-9_.-]", "_", name.lower()).lstrip("_.-") or "video"
    return plain if plain == name else f"{plain}-{hashlib.sha1(name.encode()).hexdigest()[:6]}"


def shown_videos(qc: ArchiveQC) -> list[tuple[VideoQC, Role]]:
    """The videos shown with frames: the `n_worst` worst with trajectories, then `n_samples` spread over the rest."""
    traced = [v for v in qc.videos if v.status in ("incomplete", "ok")]
    worst, rest = traced[: qc.config.n_worst], traced[qc.config.n_worst :]
    n = min(qc.config.n_samples, len(rest))
    picks = sorted({int((j + 0.5) * len(rest) / n) for j in range(n)}) if n else []
    return [(v, "worst") for v in worst] + [(rest[i], "sample") for i in picks]


def summary_caption(config: ArchiveConfig) -> str:
    """How the summary table is sorted and what its columns count, for the line above it."""
    return (
        '<p class="meta">Sorted worst first: videos without trajectories (failed, then missing), then '
        "incomplete ones (fewer frames with trajectories than probed), then by the share of flagged points, "
        f"highest first. A point is flagged when it scores below {config.score_threshold:g} or is missing, or "
        f"when it moved more than {config.jump_fraction:g} of the image diagonal (the px in brackets) since the "
        f"previous frame (a jump). A gap is a run of at least {config.min_gap_frames} consecutive frames in which "
        "one point is low. Inference speed is frames per second of inference job time (from the jobs' "
        "benchmarks, each job's time shared among its videos by the frames it made of each, start-up "
        "included; shards kept from an earlier run cost none).</p>"
    )


def summary_table(qc: ArchiveQC) -> str:
    """One row per video, worst first."""
    rows = []
    for v in qc.videos:
        probe = v.probe or {}
        has_size = isinstance(probe.get("width"), int) and isinstance(probe.get("height"), int)
        traced = v.status in ("incomplete", "ok")
        worst = max(v.low_by_keypoint.items(), key=lambda item: item[1]) if v.low_by_keypoint else None
        rows.append(
            [
                esc(v.name),
                f'<span class="{"ok" if v.status == "ok" else "bad"}">{esc(v.status)}</span>',
                f"{v.n_frames if traced else '–'} / {esc(probe.get('n_frames', '–'))}",
                fmt(v.fps, 3),
                f"{probe['width']}×{probe['height']}" if has_size else "–",
                {True: "yes", False: "no"}.get(probe.get("variable_frame_rate"), "–"),
                fmt(v.median_score, 3),
                _percent(v.low_fraction),
                f"{esc(worst[0])} ({_percent(worst[1])})" if worst and worst[1] > 0 else "–",
                f"{v.n_jumps} (&gt;{v.jump_px:.0f} px)" if traced and v.jump_px is not None else "–",
                str(v.n_gaps) if traced else "–",
                str(v.longest_gap) if traced else "–",
                fmt(v.throughput_fps, 1),
            ]
        )
    header = ["video", "status", "frames (traced / probed)", "fps", "size", "VFR", "median score",
              f"points with score < {qc.config.score_threshold:g}", "worst keypoint", "jumps", "gaps",
              "longest gap (frames)", "inference (frames/s)"]  # fmt: skip
    return table(header, rows, "archive")


def _percent(value: float | None) -> str:
    """A fraction as a percentage with one decimal; "–" for None."""
    return "–" if value is None else f"{100 * value:.1f} %"


def totals(qc: ArchiveQC) -> str:
    """One sentence over all videos: frames, low points, jumps, gaps and inference speed."""
    traced = [v for v in qc.videos if v.n_points]
    if not traced:
        return "<p>No video has trajectories.</p>"
    frames = sum(v.n_frames for v in traced)
    low = sum(v.n_low for v in traced) / sum(v.n_points for v in traced)
    text = (
        f"<p>Over all videos: {frames} frames with trajectories, {_percent(low)} of points scoring below "
        f"{qc.config.score_threshold:g} or missing, {sum(v.n_jumps for v in traced)} jumps, "
        f"{sum(v.n_gaps for v in traced)} gaps."
    )
    timed = [v for v in traced if v.infer_seconds]
    if timed:
        seconds = sum(v.infer_seconds or 0.0 for v in timed)
        text += (
            f" Inference: {sum(v.n_frames for v in timed) / seconds:.1f} frames/s over {seconds:.1f} s of "
            f"inference jobs ({len(timed)} videos with benchmarks)."
        )
    return text + "</p>"


def keypoint_table(qc: ArchiveQC, traced: Sequence[VideoQC]) -> str:
    """Share of low-score points per keypoint: over all videos, then per video (worst first), folded."""
    weights = np.array([v.n_points for v in traced], dtype=float)  # each keypoint has n_points / K of them
    pooled = {k: float(np.average([v.low_by_keypoint[k] for v in traced], weights=weights)) for k in qc.keypoints}
    rows = [["<b>all videos</b>", *[_percent(pooled[k]) for k in qc.keypoints]]]
    rows += [[esc(v.name), *[_percent(v.low_by_keypoint[k]) for k in qc.keypoints]] for v in traced]
    threshold = qc.config.score_threshold
    return (
        f"<details><summary>Points with score &lt; {threshold:g} or missing, per keypoint and video</summary>"
        + f'<div class="scroll">{table(["video", *qc.keypoints], rows, "keypoints")}</div>'
        + "</details>"
    )


def provenance_list(qc: ArchiveQC) -> str:
    """The distinct provenance records of the trajectory files, each with the videos it covers."""
    groups: dict[tuple[tuple[str, str], ...], list[str]] = {}
    for v in qc.videos:
        if v.provenance:
            groups.setdefault(tuple(sorted(v.provenance.items())), []).append(v.name)
    if not groups:
        return ""
    parts = [f"<details><summary>Provenance of the trajectories ({len(groups)} distinct)</summary>"]
    for items, names in groups.items():
        listed = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        entries = "".join(f"<dt>{esc(k)}</dt><dd><code>{esc(value)}</code></dd>" for k, value in items)
        parts.append(f"<p>{len(names)} video(s): {esc(listed)}</p><dl>{entries}</dl>")
    return "".join(parts) + "</details>"


def _video_info(probe: Mapping[str, Any] | None, path: Path) -> VideoInfo:
    """The video's `VideoInfo` from its probe JSON when complete, else by probing the file."""
    try:
        return VideoInfo.from_dict(dict(probe or {}))
    except (ValueError, TypeError):
        return probe_video(path)


def _stretch(video: VideoQC, n_frames: int, role: Role) -> tuple[int, int]:
    """[start, stop) of the stretch shown: the worst one, or for a sample one as long from the middle."""
    start, stop = video.window or (0, 0)
    if role == "sample":
        start = max(0, (n_frames - (stop - start)) // 2)
        stop = start + (video.window[1] - video.window[0] if video.window else 0)
    return start, stop


def shown_video(
    qc: ArchiveQC, video: VideoQC, role: Role, path: str | Path | None
) -> tuple[str, list[ReportFigure], ReportClip | None]:
    """One shown video: its trajectories, frames of a stretch with the points drawn, and a clip of it.

    Args:
        qc: the archive QC.
        video: the video, one of `qc.videos`, with trajectories.
        role: "worst": its worst stretch, and the frames in it with the most flagged points;
            "sample": a stretch from its middle, frames evenly spaced.
        path: its file; None: the probe's `path`.

    Returns:
        The HTML (without the clip), the figures, and the clip (None when the video can't be read;
        the HTML says why).
    """
    config, keypoints, name = qc.config, qc.keypoints, video.name
    threshold = config.score_threshold
    rows = read_video_trajectories(qc.files[name], keypoints)
    tracks = tracks_from_table(rows, keypoints)
    key = slug(name)
    html = f"<h4>{esc(name)} ({role}, rank {qc.videos.index(video) + 1} of {len(qc.videos)})</h4>"
    present = [k for k in keypoints if k in set(rows["keypoint"])]
    figures = [
        figure_of(
            f"archive-trajectories--{key}",
            plots.trajectory_plot(rows, present, threshold, title=name),
            f"Trajectories of {name}: x and y in pixels against time (y grows downwards, as in the image); "
            f"× marks points scoring below {threshold:g}.",
            f"trajectories of {name}",
        )
    ]
    html += figures[0].html()
    start, stop = _stretch(video, len(tracks.times), role)
    file = Path(path if path is not None else (video.probe or {}).get("path", ""))
    try:
        if not file.is_file():
            raise InputError(file, "video file not found")
        info = _video_info(video.probe, file)
        stop = min(stop, info.n_frames)
        if stop <= start:
            raise InputError(file, f"has {info.n_frames} frames, fewer than the trajectories' {start + 1}")
        low, jump = flag_points(tracks, threshold, video.jump_px if video.jump_px is not None else np.inf)
        flagged = (low | jump)[start:stop].sum(axis=(1, 2))  # (W,) flagged points per frame
        jumps = jump[start:stop].sum(axis=(1, 2))  # (W,)
        if role == "worst":  # the frames with the most flagged points (then jumps, the rarer), in time order
            panels = start + np.sort(np.lexsort((np.arange(stop - start), -jumps, -flagged))[: config.n_panels])
        else:
            panels = np.unique(np.linspace(start, stop - 1, min(config.n_panels, stop - start)).round().astype(int))
        step = max(1, math.ceil(info.fps / config.clip_max_fps))
        label = name if len(name) <= 24 else name[:23] + "…"
        mp4, drawn = read_labeled_stretch(
            file, info, (start, stop), step, panels.tolist(), tracks.xy, low, jump, config.clip_max_width, label
        )
    except (InputError, RuntimeError, OSError, ValueError) as error:
        return html + f'<p class="bad">Frames not shown: {esc(error)}</p>', figures, None
    span = f"frames {start}–{stop - 1}"
    shown = ", ".join(map(str, panels.tolist()))
    why = (
        f"the {stop - start}-frame stretch with the most flagged points ({video.window_flags}); the frames "
        f"shown ({shown}) have the most in it"
        if role == "worst"
        else f"a stretch from the middle of the video, frames {shown} shown"
    )
    distance = f"more than {video.jump_px:.0f} px" if video.jump_px is not None else "too far"
    figures.append(
        ReportFigure(
            name=f"archive-frames--{key}",
            png=panel_grid(drawn, keypoints, f"{name}: frames {start} to {stop - 1} ({role})"),
            caption=f"Frames of {name}, {span}: {why}. Discs: points scoring at least {threshold:g}; "
            f"crosses: below it; red rings: jumps of {distance} from the previous frame.",
            alt=f"frames of {name} with predicted points",
        )
    )
    html += figures[-1].html()
    size = clip_size(info.width, info.height, config.clip_max_width)
    every = f", every {step}th frame" if step > 1 else ""
    clip = ReportClip(
        name=f"archive-clip--{key}",
        mp4=mp4,
        caption=f"Clip of {name}, {span}{every}, at {info.fps / step:g} frames/s, {size[0]}×{size[1]} px: "
        f"discs are points scoring at least {threshold:g}, crosses below it.",
        alt=f"clip of {name} with predicted points",
    )
    return html, figures, clip


def archive_section(qc: ArchiveQC, *, video_paths: Mapping[str, str | Path] | None = None) -> Section:
    """The archive section of the report: failures, the summary worst first, the worst stretches.

    Args:
        qc: the archive QC (`archive_qc`).
        video_paths: each video's file, by name; a video not in it is read from its probe's
            `path`. A video whose file is missing or unreadable is shown without frames, saying why.

    Returns:
        The section, its figures and its clips.
    """
    config, threshold = qc.config, qc.config.score_threshold
    parts = [
        f"<p>{len(qc.videos)} videos: {qc.count('ok')} complete, {qc.count('incomplete')} incomplete, "
        f"{qc.count('failed', 'missing')} without trajectories.</p>"
    ]
    failed = [v for v in qc.videos if v.status in ("failed", "missing")]
    if failed:
        rows = [[esc(v.name), esc(v.failure or "no trajectories (no logs searched)")] for v in failed]
        parts += ["<h3>Failed videos</h3>", table(["video", "error"], rows, "failures")]
    parts += ["<h3>Summary, worst first</h3>", summary_caption(config)]
    parts += [f'<div class="scroll">{summary_table(qc)}</div>', totals(qc)]
    figures: list[ReportFigure] = []
    traced = [v for v in qc.videos if v.low_by_keypoint]
    if traced:
        parts.append(keypoint_table(qc, traced))
        fractions = np.array([[v.low_by_keypoint[k] for k in qc.keypoints] for v in traced])  # (V, K)
        figures.append(
            figure_of(
                "archive-keypoints",
                plots.low_fraction_plot(qc.keypoints, fractions, threshold),
                f"Share of each keypoint's points scoring below {threshold:g} or missing, one dot per video; "
                "the bar is the median over videos. A keypoint high in many videos is often hidden or poorly learned.",
                "low-score points per keypoint over videos",
            )
        )
        figures.append(
            figure_of(
                "archive-scores",
                plots.score_histograms(qc.keypoints, qc.score_counts, threshold),
                f"Peak scores over all videos, one panel per keypoint, as fractions of its scored points; "
                f"red bars are below {threshold:g}; missing points are left out.",
                "score histograms per keypoint",
            )
        )
        parts += [f.html() for f in figures]
    clips: list[ReportClip] = []
    n_embedded = 0
    shown = shown_videos(qc)
    if shown:
        parts.append("<h3>Worst stretches, and samples</h3>")
    for video, role in shown:
        html, media, clip = shown_video(qc, video, role, (video_paths or {}).get(video.name))
        figures += media
        if clip is not None:
            embed = len(clip.mp4) <= config.embed_max_bytes and n_embedded < config.max_embedded_clips
            n_embedded += embed
            html += clip.html(embed)
            clips.append(clip)
        parts.append(html)
    parts.append(provenance_list(qc))
    return Section(title="Archive", body="\n".join(parts), figures=tuple(figures), clips=tuple(clips))
