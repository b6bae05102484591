"""The QC report: one self-contained HTML page over a model's evaluation, training and trajectories.

The page opens offline: CSS is inline, every figure is an inline base64 PNG (see
`posecore.qc.plots`), and it references no URL and needs no JavaScript. It reads the artefacts
of the other stages through their contracts (DESIGN.md) and raises `InputError`, naming the
file and key, when one of them does not follow its contract.
"""

from __future__ import annotations

import html
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from posecore import __version__
from posecore.errors import InputError
from posecore.qc import plots

TRAJECTORY_SCHEMA = pa.schema(
    [
        ("frame", pa.int64()),
        ("time_s", pa.float64()),
        ("instance", pa.int16()),
        ("keypoint", pa.string()),
        ("x", pa.float32()),
        ("y", pa.float32()),
        ("score", pa.float32()),
        ("video", pa.string()),
    ]
)
"""The trajectory table as the report reads it; `keypoint` may be stored dictionary-encoded."""

PREDICTION_COLUMNS = ("frame", "keypoint", "x", "y", "score", "x_true", "y_true", "error_px")
"""Columns of the evaluation's predictions Parquet."""


@dataclass(frozen=True)
class EvalMetrics:
    """The evaluation's metrics JSON: errors in pixels per keypoint (None: no label in the split)."""

    split: str
    n_frames: int | None
    keypoints: tuple[str, ...]
    rmse_px: Mapping[str, float | None]
    rmse_px_all: float | None
    median_px: Mapping[str, float | None] | None = None
    p90_px: Mapping[str, float | None] | None = None


@dataclass(frozen=True)
class VideoSummary:
    """What the report says about one video: its probe, and the statistics of its trajectories."""

    name: str
    probe: Mapping[str, Any] | None = None
    n_frames: int = 0
    n_instances: int = 0
    median_score: float | None = None
    fraction_low: float | None = None
    figure_uri: str | None = None
    provenance: Mapping[str, str] = field(default_factory=dict)


def _number(value: Any, path: Path, where: str) -> float | None:
    """A JSON number as float, None for null or NaN; anything else is an InputError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(path, f"expected a number or null, got {value!r}", where=where)
    return None if math.isnan(value) else float(value)


def _read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in `path`; a missing file, bad JSON or a non-object is an InputError."""
    try:
        content = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(path, f"not valid JSON: {error}") from None
    if not isinstance(content, dict):
        raise InputError(path, f"expected a JSON object, got {type(content).__name__}")
    return content


def read_metrics(path: Path) -> EvalMetrics:
    """Read and check the evaluation's metrics JSON (`keypoints`, `rmse_px`, optional median/p90)."""
    content = _read_json_object(path)
    for key in ("keypoints", "rmse_px"):
        if key not in content:
            raise InputError(path, "required key is missing", where=f"key {key}")
    keypoints = content["keypoints"]
    if not isinstance(keypoints, list) or not all(isinstance(k, str) for k in keypoints) or not keypoints:
        raise InputError(path, "expected a non-empty list of keypoint names", where="key keypoints")
    tables: dict[str, dict[str, float | None] | None] = {}
    for key in ("rmse_px", "median_px", "p90_px"):
        if key not in content and key != "rmse_px":
            tables[key] = None
            continue
        if not isinstance(content[key], dict):
            raise InputError(path, "expected an object keyed by keypoint name", where=f"key {key}")
        missing = [k for k in keypoints if k not in content[key]]
        if missing:
            raise InputError(path, f"no value for keypoint {missing[0]!r}", where=f"key {key}")
        tables[key] = {k: _number(content[key][k], path, f"key {key}.{k}") for k in keypoints}
    n_frames = content.get("n_frames")
    return EvalMetrics(
        split=str(content.get("split", "test")),
        n_frames=None if n_frames is None else int(n_frames),
        keypoints=tuple(keypoints),
        rmse_px=tables["rmse_px"] or {},
        rmse_px_all=_number(content.get("rmse_px_all"), path, "key rmse_px_all"),
        median_px=tables["median_px"],
        p90_px=tables["p90_px"],
    )


PROBE_TYPES: Mapping[str, tuple[type, ...]] = {
    "n_frames": (int,),
    "fps": (int, float),
    "width": (int,),
    "height": (int,),
    "codec": (str,),
    "pix_fmt": (str,),
    "duration_s": (int, float),
    "variable_frame_rate": (bool,),
}
"""Probe JSON fields that the report shows, and their JSON types; each may be absent or null."""


def read_probe(path: Path) -> dict[str, Any]:
    """Read one video's probe JSON and check the types of the fields the report shows."""
    probe = _read_json_object(path)
    for key, types in PROBE_TYPES.items():
        value = probe.get(key)
        if value is not None and (not isinstance(value, types) or (isinstance(value, bool) and bool not in types)):
            expected = " or ".join(t.__name__ for t in types)
            raise InputError(path, f"expected {expected}, got {value!r}", where=f"key {key}")
    return probe


def read_labeled_counts(path: Path, keypoints: Sequence[str]) -> dict[str, int]:
    """Number of labeled points per keypoint (finite `error_px`) in the predictions Parquet."""
    try:
        schema = pq.read_schema(path)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except pa.ArrowInvalid as error:
        raise InputError(path, f"not a Parquet file: {error}") from None
    missing = [c for c in PREDICTION_COLUMNS if c not in schema.names]
    if missing:
        raise InputError(path, f"missing column(s) {', '.join(missing)}")
    table = pq.read_table(path, columns=["keypoint", "error_px"]).to_pandas()
    table["keypoint"] = table["keypoint"].astype(str)
    unknown = sorted(set(table["keypoint"]) - set(keypoints))
    if unknown:
        raise InputError(path, f"keypoint {unknown[0]!r} is not in the metrics' keypoints {list(keypoints)}")
    labeled = table[np.isfinite(table["error_px"].to_numpy(dtype=float))]
    counts = labeled.groupby("keypoint").size()
    return {k: int(counts.get(k, 0)) for k in keypoints}


def read_training_log(path: Path) -> pd.DataFrame:
    """The flattened CSVLogger metrics: `step` and any of `train/loss`, `val/loss`, `val/rmse_px`."""
    try:
        log = pd.read_csv(path)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as error:
        raise InputError(path, f"not a readable CSV: {error}") from None
    if "step" not in log.columns:
        raise InputError(path, "missing column step")
    if not {"train/loss", "val/loss", "val/rmse_px"} & set(log.columns):
        raise InputError(path, "none of the columns train/loss, val/loss, val/rmse_px")
    return log


def _fragments_by_video(trajectories_dir: Path, dataset: ds.Dataset) -> dict[str, list[ds.Fragment]]:
    """The dataset's files grouped by the `video=<name>` folder they sit in, schemas checked."""
    by_video: dict[str, list[ds.Fragment]] = {}
    for fragment in dataset.get_fragments():
        keys = ds.get_partition_keys(fragment.partition_expression)
        if "video" not in keys:
            raise InputError(fragment.path, f"not inside a video=<name> folder of {trajectories_dir}")
        names = fragment.physical_schema.names
        missing = [c for c in TRAJECTORY_SCHEMA.names if c != "video" and c not in names]
        if missing:
            raise InputError(fragment.path, f"missing column(s) {', '.join(missing)}")
        by_video.setdefault(str(keys["video"]), []).append(fragment)
    return by_video


def _provenance(fragment: ds.Fragment) -> dict[str, str]:
    """The file's own key-value metadata (model hash, version, config), without Arrow/pandas internals."""
    metadata = fragment.physical_schema.metadata or {}
    shown = {}
    for key, value in metadata.items():
        name = key.decode("utf-8", "replace")
        if name in ("pandas", "ARROW:schema"):
            continue
        text = value.decode("utf-8", "replace")
        shown[name] = text if len(text) <= 400 else text[:400] + " …"
    return shown


def summarize_trajectories(
    trajectories_dir: Path, keypoints: Sequence[str], score_threshold: float
) -> tuple[dict[str, VideoSummary], np.ndarray]:
    """Read the trajectories one video at a time: statistics, a trajectory figure and score counts.

    Returns:
        The summary of every video that has trajectory files, by name, and the score histogram
        counts (K, len(plots.SCORE_BINS) - 1) over all videos, in `keypoints` order.
    """
    if not Path(trajectories_dir).is_dir():
        raise InputError(trajectories_dir, "trajectories folder not found")
    partitioning = ds.partitioning(pa.schema([("video", pa.string())]), flavor="hive")
    dataset = ds.dataset(trajectories_dir, format="parquet", partitioning=partitioning, schema=TRAJECTORY_SCHEMA)
    counts = np.zeros((len(keypoints), len(plots.SCORE_BINS) - 1), dtype=np.int64)
    summaries = {}
    for name, fragments in sorted(_fragments_by_video(trajectories_dir, dataset).items()):
        columns = [c for c in TRAJECTORY_SCHEMA.names if c != "video"]
        table = dataset.to_table(filter=ds.field("video") == name, columns=columns).to_pandas()
        if table.empty:
            continue
        table["keypoint"] = table["keypoint"].astype(str)
        unknown = sorted(set(table["keypoint"]) - set(keypoints))
        if unknown:
            raise InputError(
                fragments[0].path, f"keypoint {unknown[0]!r} is not one of the model's keypoints {list(keypoints)}"
            )
        scores = table["score"].to_numpy(dtype=float)  # (N,)
        finite = np.isfinite(scores)
        for index, keypoint in enumerate(keypoints):
            chosen = np.clip(scores[finite & (table["keypoint"] == keypoint).to_numpy()], 0.0, 1.0)
            counts[index] += np.histogram(chosen, bins=plots.SCORE_BINS)[0]
        present = [k for k in keypoints if k in set(table["keypoint"])]
        figure = plots.trajectory_plot(table, present, score_threshold, title=name)
        summaries[name] = VideoSummary(
            name=name,
            n_frames=int(table["frame"].nunique()),
            n_instances=int(table["instance"].nunique()),
            median_score=float(np.median(scores[finite])) if finite.any() else None,
            fraction_low=float(np.mean(~(scores >= score_threshold))),  # NaN scores count as low
            figure_uri=plots.figure_to_data_uri(figure),
            provenance=_provenance(fragments[0]),
        )
    return summaries, counts


def _fmt(value: float | None, digits: int = 2) -> str:
    """A number for a table cell; "–" for missing."""
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _esc(value: Any) -> str:
    """`value` as HTML-escaped text."""
    return html.escape(str(value))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], css_class: str) -> str:
    """An HTML table; cells are given already escaped."""
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{css_class}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _figure(uri: str, alt: str, caption: str) -> str:
    """An inline image with its caption."""
    return f'<figure><img src="{uri}" alt="{_esc(alt)}"><figcaption>{_esc(caption)}</figcaption></figure>'


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
                _esc(s.name),
                f'<span class="{"ok" if status == "ok" else "bad"}">{_esc(status)}</span>',
                _esc(probe.get("n_frames", "–")),
                str(s.n_frames) if has else "–",
                _fmt(probe.get("fps"), 3),
                _esc(size),
                _esc(codec),
                vfr,
                str(s.n_instances) if has else "–",
                _fmt(s.median_score, 3),
                "–" if s.fraction_low is None else f"{100 * s.fraction_low:.1f} %",
            ]
        )
    header = ["video", "status", "frames probed", "frames with trajectories", "fps", "size", "codec", "VFR",
              "instances", "median score", f"points with score < {score_threshold:g}"]  # fmt: skip
    return _table(header, rows, "videos")


def _error_table(metrics: EvalMetrics, labeled: Mapping[str, int]) -> str:
    """The per-keypoint test error table: RMSE, median and p90 when present, labeled count."""
    extra = [(name, t) for name, t in (("median (px)", metrics.median_px), ("p90 (px)", metrics.p90_px)) if t]
    rows = []
    for k in metrics.keypoints:
        cells = [_esc(k), _fmt(metrics.rmse_px.get(k))]
        cells += [_fmt(table.get(k)) for _, table in extra]
        rows.append([*cells, str(labeled.get(k, 0))])
    total = ["<b>all keypoints</b>", _fmt(metrics.rmse_px_all), *["–" for _ in extra], str(sum(labeled.values()))]
    rows.append(total)
    return _table(["keypoint", "RMSE (px)", *[name for name, _ in extra], "n labeled"], rows, "errors")


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 1em auto; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.6em; }
.meta { color: #555; } table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; } td:first-child, th:first-child { text-align: left; }
.ok { color: #2a7a2a; } .bad { color: #b22222; font-weight: bold; }
figure { margin: 0.8em 0; } img { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 0.85em; } details { margin: 0.4em 0; font-size: 0.85em; }
"""


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
    _write_atomically(Path(out_html), page)


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
        f"<h1>QC report: {_esc(model_name)}</h1>",
        f'<p class="meta">model <b>{_esc(model_name)}</b> · built {date} · posecore {_esc(__version__)}'
        f" · score threshold {score_threshold:g}</p>",
        "<h2>Videos</h2>",
        _video_table(videos, score_threshold) if videos else "<p>No videos were given.</p>",
        f"<h2>Test error ({_esc(metrics.split)} split{frames})</h2>",
        _error_table(metrics, labeled),
        _figure(
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
            _figure(
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
            _figure(
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
        f"<title>QC report: {_esc(model_name)}</title><style>{_CSS}</style></head>\n"
        "<body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )


def _trajectory_section(video: VideoSummary, score_threshold: float) -> str:
    """One video's trajectory figure and provenance, or why it has none."""
    title = f"<h3>{_esc(video.name)}</h3>"
    if video.figure_uri is None:
        return f'{title}<p class="bad">{_esc(_video_status(video))}</p>'
    figure = _figure(
        video.figure_uri,
        f"trajectories of {video.name}",
        f"x and y in pixels against time (y grows downwards, as in the image); "
        f"× marks points scoring below {score_threshold:g}.",
    )
    if not video.provenance:
        return title + figure
    items = "".join(f"<dt>{_esc(k)}</dt><dd><code>{_esc(v)}</code></dd>" for k, v in video.provenance.items())
    return f"{title}{figure}<details><summary>provenance</summary><dl>{items}</dl></details>"


def _write_atomically(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, then rename it onto `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
