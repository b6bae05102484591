"""Training QC of a model: how its run went, its learning curves, its test error per keypoint, its worst test frames.

`training_section(...)` reads the training summary (`training.json`: what "auto" settings were
decided from the labels, how the run ended, and warnings of a model that is not done), the
training log (Lightning's CSVLogger metrics), the evaluation's metrics JSON and per-point
predictions Parquet, checks that they belong to the given dataset and to each other, and
returns the report's "Training" section. The worst test frames are drawn from
`dataset.images`, label as circle, prediction as cross, in the keypoint colours of the other figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from posecore.errors import InputError
from posecore.io.dataset import TrainingDataset
from posecore.qc import plots, section_plots
from posecore.qc.html import ReportFigure, Section, esc, fmt, table
from posecore.qc.inputs import PREDICTION_COLUMNS, EvalMetrics, read_metrics, read_training_log
from posecore.qc.label_checks import frame_source
from posecore.train.summary import TrainingSummary, read_summary

PERCENTILES = (50, 75, 90, 95)
"""Percentiles of the per-point test error shown per keypoint."""


def read_predictions(path: Path, metrics: EvalMetrics, dataset: TrainingDataset) -> pd.DataFrame:
    """The evaluation's predictions Parquet, checked against its metrics JSON and the dataset.

    Returns:
        The table with columns `PREDICTION_COLUMNS`, `keypoint` as str and `frame` a dataset row.

    Raises:
        InputError: naming `path` (and the row): a missing column, an unknown keypoint, a frame
            that is not a row of the dataset, or labels that differ from the dataset's (the
            evaluation was of another dataset).
    """
    try:
        predictions = pq.read_table(path, columns=list(PREDICTION_COLUMNS)).to_pandas()
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except (pa.ArrowInvalid, KeyError) as error:
        raise InputError(path, f"not a predictions Parquet with columns {list(PREDICTION_COLUMNS)}: {error}") from None
    predictions["keypoint"] = predictions["keypoint"].astype(str)
    index = {name: k for name, k in zip(metrics.keypoints, range(len(metrics.keypoints)), strict=True)}
    unknown = ~predictions["keypoint"].isin(list(index))
    if unknown.any():
        row = int(np.argmax(unknown.to_numpy()))
        name = predictions["keypoint"].iloc[row]
        raise InputError(path, f"keypoint {name!r} is not in the metrics' keypoints {list(index)}", where=f"row {row}")
    frames = predictions["frame"].to_numpy()
    outside = (frames < 0) | (frames >= len(dataset.images))
    if outside.any():
        row = int(np.argmax(outside))
        raise InputError(
            path, f"frame {frames[row]} is not a row of the dataset ({len(dataset.images)} frames)", where=f"row {row}"
        )
    columns = predictions["keypoint"].map(index).to_numpy()  # (P,)
    expected = dataset.keypoints[frames, columns].astype(np.float64)  # (P, 2)
    given = predictions[["x_true", "y_true"]].to_numpy(dtype=np.float64)  # (P, 2)
    differ = ~((np.abs(expected - given) <= 1e-3) | (np.isnan(expected) & np.isnan(given))).all(axis=1)
    if differ.any():
        row = int(np.argmax(differ))
        raise InputError(
            path,
            f"label of {predictions['keypoint'].iloc[row]!r} in frame {frames[row]} "
            f"({frame_source(dataset, int(frames[row]))}) is {tuple(given[row])} here but {tuple(expected[row])} "
            "in the dataset: the evaluation was of another dataset",
            where=f"row {row}",
        )
    return predictions


def keypoint_errors(predictions: pd.DataFrame, keypoints: Sequence[str]) -> pd.DataFrame:
    """Per-keypoint statistics of the labeled points' errors (px), and a last row "all keypoints".

    Returns:
        Indexed by keypoint name: n, rmse, mean, p50, p75, p90, p95, max (NaN where n is 0).
    """
    labeled = predictions[np.isfinite(predictions["error_px"].to_numpy(dtype=float))]
    rows = {}
    for name in [*keypoints, "all keypoints"]:
        chosen = labeled if name == "all keypoints" else labeled[labeled["keypoint"] == name]
        e = chosen["error_px"].to_numpy(dtype=np.float64)  # (n,)
        row = {
            "n": len(e),
            "rmse": np.sqrt(np.mean(e**2)) if len(e) else np.nan,
            "mean": np.mean(e) if len(e) else np.nan,
        }
        row |= {f"p{q}": np.percentile(e, q) if len(e) else np.nan for q in PERCENTILES}
        rows[name] = row | {"max": e.max() if len(e) else np.nan}
    return pd.DataFrame.from_dict(rows, orient="index")


def _check_rmse(stats: pd.DataFrame, metrics: EvalMetrics, metrics_json: Path, predictions_parquet: Path) -> None:
    """Raise when the predictions' RMSE per keypoint is not the metrics JSON's: two different evaluations."""
    for name in metrics.keypoints:
        stated, computed = metrics.rmse_px.get(name), float(stats.loc[name, "rmse"])
        same = (stated is None and np.isnan(computed)) or (
            stated is not None and abs(stated - computed) <= 1e-3 + 1e-4 * abs(stated)
        )
        if not same:
            raise InputError(
                predictions_parquet,
                f"RMSE of {name!r} is {computed:.4f} px here but {stated} px in {metrics_json}: "
                "the two files come from different evaluations",
            )


def _curves_summary(log: pd.DataFrame) -> str:
    """One sentence: epochs and steps logged, best and last validation RMSE, last training loss."""
    facts = []
    if "epoch" in log.columns and log["epoch"].notna().any():
        facts.append(f"{int(log['epoch'].max()) + 1} epochs")
    facts.append(f"{int(log['step'].max()) + 1} steps")
    if "val/rmse_px" in log.columns and log["val/rmse_px"].notna().any():
        rmse = log.dropna(subset=["val/rmse_px"])
        best = rmse.loc[rmse["val/rmse_px"].idxmin()]
        at = f"epoch {int(best['epoch'])}" if "epoch" in rmse.columns else f"step {int(best['step'])}"
        facts.append(f"best validation RMSE {best['val/rmse_px']:.2f} px at {at}")
        facts.append(f"last {rmse['val/rmse_px'].iloc[-1]:.2f} px")
    if "train/loss" in log.columns and log["train/loss"].notna().any():
        facts.append(f"last training loss {log['train/loss'].dropna().iloc[-1]:.4g}")
    return "<p>" + esc(", ".join(facts)) + ".</p>"


def _worst(
    predictions: pd.DataFrame, dataset: TrainingDataset, keypoints: Sequence[str], n_worst: int
) -> tuple[str, ReportFigure | None]:
    """The table and panels of the `n_worst` frames with the largest mean error, worst first."""
    labeled = predictions[np.isfinite(predictions["error_px"].to_numpy(dtype=float))]
    if labeled.empty or n_worst < 1:
        return "<p>No labeled test points to show.</p>", None
    per_frame = labeled.groupby("frame")["error_px"].agg(["mean", "max", "idxmax"])
    per_frame = per_frame.assign(row=per_frame.index).sort_values(["mean", "row"], ascending=[False, True])
    per_frame = per_frame.head(n_worst)
    index = {name: k for k, name in enumerate(keypoints)}
    images, predicted, labels, titles, rows = [], [], [], [], []
    for frame, stat in per_frame.iterrows():
        points = predictions[predictions["frame"] == frame]
        columns = points["keypoint"].map(index).to_numpy()
        guess = np.full((len(keypoints), 2), np.nan)  # (K, 2)
        guess[columns] = points[["x", "y"]].to_numpy(dtype=float)
        sizes = getattr(dataset, "image_sizes", None)
        height, width = dataset.image_size if sizes is None else (int(v) for v in sizes[frame])
        images.append(dataset.images[frame][:height, :width])  # padding is at the bottom and right
        predicted.append(guess)
        labels.append(dataset.keypoints[frame].astype(float))
        source = frame_source(dataset, int(frame))
        titles.append(f"{source}\nmean {stat['mean']:.1f} px, max {stat['max']:.1f} px")
        worst_keypoint = predictions.loc[stat["idxmax"], "keypoint"]
        rows.append([str(frame), esc(source), fmt(stat["mean"]), fmt(stat["max"]), esc(worst_keypoint)])
    shown = table(["row", "source", "mean error (px)", "max error (px)", "worst keypoint"], rows, "training-worst")
    figure = section_plots.worst_frames(images, np.stack(predicted), np.stack(labels), titles, keypoints)
    return shown, ReportFigure(
        "training-worst-frames",
        plots.figure_to_png(figure),
        f"The {len(rows)} test frames with the largest mean error, worst first, each zoomed on its labels and "
        "predictions: label as circle, prediction as cross, a line between them, one colour per keypoint.",
        "worst test frames with predictions and labels",
    )


def _run_summary(summary: TrainingSummary) -> str:
    """The training run in a few lines: its warnings first, how it ended, and the settings decided from the labels."""
    parts = [f'<p class="bad">Warning: {esc(warning["message"])}</p>' for warning in summary.warnings] or [
        '<p class="ok">No warning: the maps have peaks, and the validation error had settled when training ended.</p>'
    ]
    best = "" if summary.best_epoch is None else f"; best epoch {summary.best_epoch}"
    if summary.best_val_rmse_px is not None:
        best += f" (validation RMSE {summary.best_val_rmse_px:.2f} px"
        if summary.guess_val_rmse_px is not None:
            best += f"; each keypoint at its mean training position: {summary.guess_val_rmse_px:.2f} px"
        best += ")"
    parts.append(
        f"<p>{summary.epochs} epochs in {summary.minutes:.1f} min on the {esc(summary.accelerator.upper())}, "
        f"stopped by {esc(summary.stopped_by)}{esc(best)}.</p>"
    )
    if summary.decisions:
        rows = [[f"train.{esc(d['key'])}", esc(d["value"]), esc(d["reason"])] for d in summary.decisions]
        parts.append("<p>Settings decided from the labels (config value auto):</p>")
        parts.append(table(["setting", "decided", "why"], rows, "training-decisions"))
    return "\n".join(parts)


def training_section(
    *,
    training_csv: Path | None,
    metrics_json: Path,
    predictions_parquet: Path,
    dataset: TrainingDataset,
    n_worst: int = 8,
    summary_json: Path | None = None,
) -> Section:
    """The report's "Training" section: the run, learning curves, per-keypoint test error, worst test frames.

    Args:
        training_csv: Lightning's CSVLogger metrics (`step` and any of `train/loss`, `val/loss`,
            `val/rmse_px`); None: the section says there is no training log.
        metrics_json: the evaluation's metrics (`posecore.evaluate`), keypoints as the dataset's.
        predictions_parquet: the evaluation's per-point predictions; `frame` is a dataset row.
        dataset: the dataset evaluated; its images are drawn under the worst frames' points.
        n_worst: how many of the worst test frames to show.
        summary_json: the run's training summary (`posecore.train.summary`); None: left out.

    Raises:
        InputError: naming the file: an input breaks its contract, the metrics' keypoints are not
            the dataset's, or the predictions are not of this dataset or not of these metrics.
    """
    metrics = read_metrics(Path(metrics_json))
    if tuple(metrics.keypoints) != tuple(dataset.keypoint_names):
        raise InputError(
            metrics_json,
            f"keypoints {list(metrics.keypoints)} are not the dataset's {list(dataset.keypoint_names)}",
            where="key keypoints",
        )
    predictions = read_predictions(Path(predictions_parquet), metrics, dataset)
    stats = keypoint_errors(predictions, metrics.keypoints)
    _check_rmse(stats, metrics, Path(metrics_json), Path(predictions_parquet))
    log = None if training_csv is None else read_training_log(Path(training_csv))

    figures: list[ReportFigure] = []
    parts = []
    if summary_json is not None:
        parts += ["<h3>The training run</h3>", _run_summary(read_summary(Path(summary_json)))]
    parts.append("<h3>Learning curves</h3>")
    if log is None:
        parts.append("<p>No training log was given.</p>")
    else:
        parts.append(_curves_summary(log))
        figures.append(
            ReportFigure(
                "training-curves",
                plots.figure_to_png(plots.training_curves(log)),
                "Loss (training per step, validation per epoch; log scale when positive) and validation RMSE "
                "in pixels.",
                "training curves",
            )
        )
        parts.append(figures[-1].html())

    n_frames = predictions["frame"].nunique()
    parts.append(f"<h3>Test error per keypoint ({esc(metrics.split)} split, {n_frames} frames)</h3>")
    header = ["keypoint", "n labeled", "RMSE (px)", "mean (px)", *(f"p{q} (px)" for q in PERCENTILES), "max (px)"]
    rows = [
        [
            "<b>all keypoints</b>" if name == "all keypoints" else esc(name),
            str(int(s["n"])),
            fmt(s["rmse"]),
            fmt(s["mean"]),
            *(fmt(s[f"p{q}"]) for q in PERCENTILES),
            fmt(s["max"]),
        ]
        for name, s in stats.iterrows()
    ]
    parts.append(table(header, rows, "training-errors"))
    labeled = predictions[np.isfinite(predictions["error_px"].to_numpy(dtype=float))]
    errors = [labeled.loc[labeled["keypoint"] == name, "error_px"].to_numpy(dtype=float) for name in metrics.keypoints]
    distribution = section_plots.error_distribution(metrics.keypoints, errors, list(stats["rmse"].iloc[:-1]))
    figures.append(
        ReportFigure(
            "training-errors",
            plots.figure_to_png(distribution),
            "Distance in pixels between prediction and label for every labeled test point (dots), with each "
            "keypoint's median, 90th percentile and RMSE.",
            "test error per keypoint",
        )
    )
    parts.append(figures[-1].html())

    parts.append("<h3>Worst test frames</h3>")
    worst_table, worst_figure = _worst(predictions, dataset, metrics.keypoints, n_worst)
    parts.append(worst_table)
    if worst_figure is not None:
        figures.append(worst_figure)
        parts.append(worst_figure.html())
    return Section("Training", "\n".join(parts), tuple(figures))
