"""The QC report: one self-contained HTML page over a model's evaluation, training and trajectories.

The page opens offline: CSS is inline, every figure is an inline base64 PNG (see
`posecore.qc.plots`), and it references no URL and needs no JavaScript. It reads the artefacts
of the other stages through `posecore.qc.inputs`, which checks them against their contracts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from posecore import __version__
from posecore.errors import InputError
from posecore.io.atomic import atomic_path
from posecore.qc import plots
from posecore.qc.html import CSS, esc, figure, fmt, table
from posecore.qc.inputs import (
    EvalMetrics,
    VideoSummary,
    read_labeled_counts,
    read_metrics,
    read_probe,
    read_training_log,
    summarize_trajectories,
)


def _video_status(summary: VideoSummary) -> str:
    """One word or phrase saying whether the video was fully processed."""
    probe = summary.probe or {}
    if summary.probe is not None and probe.get("error"):
        return f"probe failed: {probe['error']}"
    if summary.figure_uri is None:
        return "no trajectories"
    if summary.probe is None:
        return "no probe"
    probed = probe.get("n_frames")
    if isinstance(probed, int) and summary.n_frames < probed:
        return f"incomplete ({summary.n_frames} of {probed} frames)"
    return "ok"


def _video_table(summaries: Sequence[VideoSummary], score_threshold: float) -> str:
    """The per-video summary table."""
    rows = []
    for s in summaries:
        probe = s.probe or {}
        has_size = probe.get("width") is not None and probe.get("height") is not None
        size = f"{probe['width']}×{probe['height']}" if has_size else "–"
        codec = " / ".join(str(probe[k]) for k in ("codec", "pix_fmt") if probe.get(k)) or "–"
        vfr = {True: "yes", False: "no"}.get(probe.get("variable_frame_rate"), "–")
        status = _video_status(s)
        has = s.figure_uri is not None
        rows.append(
            [
                esc(s.name),
                f'<span class="{"ok" if status == "ok" else "bad"}">{esc(status)}</span>',
                esc(probe.get("n_frames", "–")),
                str(s.n_frames) if has else "–",
                fmt(probe.get("fps"), 3),
                esc(size),
                esc(codec),
                vfr,
                str(s.n_instances) if has else "–",
                fmt(s.median_score, 3),
                "–" if s.fraction_low is None else f"{100 * s.fraction_low:.1f} %",
            ]
        )
    header = ["video", "status", "frames probed", "frames with trajectories", "fps", "size", "codec", "VFR",
              "instances", "median score", f"points with score < {score_threshold:g}"]  # fmt: skip
    return table(header, rows, "videos")


def _error_table(metrics: EvalMetrics, labeled: Mapping[str, int]) -> str:
    """The per-keypoint test error table: RMSE, median and p90 when present, labeled count."""
    extra = [(name, t) for name, t in (("median (px)", metrics.median_px), ("p90 (px)", metrics.p90_px)) if t]
    rows = []
    for k in metrics.keypoints:
        cells = [esc(k), fmt(metrics.rmse_px.get(k))]
        cells += [fmt(table.get(k)) for _, table in extra]
        rows.append([*cells, str(labeled.get(k, 0))])
    total = ["<b>all keypoints</b>", fmt(metrics.rmse_px_all), *["–" for _ in extra], str(sum(labeled.values()))]
    rows.append(total)
    return table(["keypoint", "RMSE (px)", *[name for name, _ in extra], "n labeled"], rows, "errors")


def build_report(
    out_html: Path,
    *,
    model_name: str,
    metrics_json: Path,
    predictions_parquet: Path,
    training_csv: Path | None,
    trajectories_dir: Path,
    probe_jsons: Sequence[Path],
    score_threshold: float = 0.5,
) -> None:
    """Write the QC report of one model as a self-contained HTML page, atomically.

    Args:
        out_html: where the page goes; written to a temporary file beside it, then renamed.
        model_name: the model's name, shown in the title.
        metrics_json: the evaluation's per-keypoint errors (pixels) on the test split.
        predictions_parquet: the evaluation's per-point predictions; gives labeled counts.
        training_csv: Lightning's CSVLogger metrics, or None to leave out the training curves.
        trajectories_dir: the hive-partitioned trajectories, `video=<name>/*.parquet`.
        probe_jsons: one probe JSON per video; the video's name is the file stem.
        score_threshold: points scoring below it count as low-confidence.

    Raises:
        InputError: an input is missing or breaks its contract; no page is written.
    """
    metrics = read_metrics(Path(metrics_json))
    labeled = read_labeled_counts(Path(predictions_parquet), metrics.keypoints)
    log = None if training_csv is None else read_training_log(Path(training_csv))
    probes: dict[str, dict[str, Any]] = {}
    for path in map(Path, probe_jsons):
        if path.stem in probes:
            raise InputError(path, f"a second probe for video {path.stem!r}")
        probes[path.stem] = read_probe(path)
    traced, counts = summarize_trajectories(Path(trajectories_dir), metrics.keypoints, score_threshold)
    videos = [
        replace(traced.get(name, VideoSummary(name=name)), probe=probes.get(name))
        for name in sorted(set(probes) | set(traced))
    ]

    page = render_page(model_name, metrics, labeled, log, videos, counts, score_threshold)
    with atomic_path(out_html) as tmp:
        tmp.write_text(page, encoding="utf-8")


def render_page(
    model_name: str,
    metrics: EvalMetrics,
    labeled: Mapping[str, int],
    log: pd.DataFrame | None,
    videos: Sequence[VideoSummary],
    score_counts: np.ndarray,
    score_threshold: float,
) -> str:
    """The report's HTML from the loaded inputs; `score_counts` is (K, len(plots.SCORE_BINS) - 1)."""
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    error_chart = plots.error_bar_chart(
        metrics.keypoints, metrics.rmse_px, metrics.median_px, metrics.p90_px, metrics.rmse_px_all
    )
    frames = "" if metrics.n_frames is None else f", {metrics.n_frames} frames"
    parts = [
        f"<h1>QC report: {esc(model_name)}</h1>",
        f'<p class="meta">model <b>{esc(model_name)}</b> · built {date} · posecore {esc(__version__)}'
        f" · score threshold {score_threshold:g}</p>",
        "<h2>Videos</h2>",
        _video_table(videos, score_threshold) if videos else "<p>No videos were given.</p>",
        f"<h2>Test error ({esc(metrics.split)} split{frames})</h2>",
        _error_table(metrics, labeled),
        figure(
            plots.figure_to_data_uri(error_chart),
            "bar chart of test error per keypoint",
            "Root-mean-square distance in pixels between prediction and label, per keypoint; "
            "dots and triangles mark the median and 90th percentile when the evaluation gave them.",
        ),
        "<h2>Training</h2>",
    ]
    if log is None:
        parts.append("<p>No training log was given.</p>")
    else:
        parts.append(
            figure(
                plots.figure_to_data_uri(plots.training_curves(log)),
                "training curves",
                "Loss (training per step, validation per epoch) and validation RMSE in pixels.",
            )
        )
    parts.append("<h2>Score distribution</h2>")
    if not score_counts.any():
        parts.append("<p>No trajectories to take scores from.</p>")
    else:
        parts.append(
            figure(
                plots.figure_to_data_uri(plots.score_histograms(metrics.keypoints, score_counts, score_threshold)),
                "score histograms per keypoint",
                f"Peak scores over all videos, one panel per keypoint, as fractions of its points; "
                f"red bars are below {score_threshold:g}; points without a score are left out.",
            )
        )
    parts.append("<h2>Trajectories</h2>")
    parts += [_trajectory_section(video, score_threshold) for video in videos]
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>QC report: {esc(model_name)}</title><style>{CSS}</style></head>\n"
        "<body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )


def _trajectory_section(video: VideoSummary, score_threshold: float) -> str:
    """One video's trajectory figure and provenance, or why it has none."""
    title = f"<h3>{esc(video.name)}</h3>"
    if video.figure_uri is None:
        return f'{title}<p class="bad">{esc(_video_status(video))}</p>'
    shown = figure(
        video.figure_uri,
        f"trajectories of {video.name}",
        f"x and y in pixels against time (y grows downwards, as in the image); "
        f"× marks points scoring below {score_threshold:g}.",
    )
    if not video.provenance:
        return title + shown
    items = "".join(f"<dt>{esc(k)}</dt><dd><code>{esc(v)}</code></dd>" for k, v in video.provenance.items())
    return f"{title}{shown}<details><summary>provenance</summary><dl>{items}</dl></details>"
