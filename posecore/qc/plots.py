"""Figures of the QC report, drawn with matplotlib's Agg backend and inlined as base64 PNG.

Every function here builds a `matplotlib.figure.Figure` without pyplot (so no global figure
state and no display are involved) and `figure_to_png` renders it, for a `ReportFigure`
(`posecore.qc.html`) to inline as a `data:image/png` URI. Images are drawn at `DPI` dots per inch and a few inches wide,
so one figure stays well under a few hundred kB and a report over ten videos a few MB.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

DPI = 90
"""Resolution of every report figure, in dots per inch."""

SCORE_BINS = np.linspace(0.0, 1.0, 41)
"""Bin edges of the score histograms; scores outside [0, 1] are counted in the end bins."""

_LINESTYLES = ("-", "--", ":", "-.")


def _new_figure(width: float, height: float) -> Figure:
    """A figure of `width` x `height` inches drawn by the Agg canvas."""
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _colors(n: int) -> list[tuple[float, float, float, float]]:
    """`n` distinct colours: tab10 up to 10 keypoints, tab20 up to 20, then a continuous map."""
    from matplotlib import colormaps

    if n <= 10:
        return [colormaps["tab10"](i) for i in range(n)]
    if n <= 20:
        return [colormaps["tab20"](i) for i in range(n)]
    return [colormaps["turbo"](i / max(n - 1, 1)) for i in range(n)]


def figure_to_png(figure: Figure) -> bytes:
    """Render `figure` to PNG bytes at `DPI`."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def training_curves(log: pd.DataFrame) -> Figure:
    """Training and validation loss against step, and validation RMSE (px) when logged.

    Args:
        log: the flattened CSVLogger table with `step` and any of `train/loss`, `val/loss`,
            `val/rmse_px`; rows where a metric was not logged hold NaN for it.
    """
    has_rmse = "val/rmse_px" in log.columns and log["val/rmse_px"].notna().any()
    figure = _new_figure(9.0 if has_rmse else 5.0, 3.4)
    loss_axes = figure.add_subplot(1, 2 if has_rmse else 1, 1)
    for column, color in (("train/loss", "#4c72b0"), ("val/loss", "#dd8452")):
        if column in log.columns:
            rows = log[["step", column]].dropna()
            style = {"marker": "o", "markersize": 3} if column.startswith("val") else {"linewidth": 1}
            loss_axes.plot(rows["step"], rows[column], color=color, label=column, **style)
    losses = log[[c for c in ("train/loss", "val/loss") if c in log.columns]].to_numpy(dtype=float)
    if losses.size and np.nanmin(losses) > 0:
        loss_axes.set_yscale("log")
    loss_axes.set_xlabel("step")
    loss_axes.set_ylabel("loss")
    loss_axes.set_title("Loss")
    loss_axes.legend(fontsize="small")
    if has_rmse:
        rmse_axes = figure.add_subplot(1, 2, 2)
        rows = log[["step", "val/rmse_px"]].dropna()
        rmse_axes.plot(rows["step"], rows["val/rmse_px"], marker="o", markersize=3, color="#55a868")
        rmse_axes.set_xlabel("step")
        rmse_axes.set_ylabel("RMSE (px)")
        rmse_axes.set_title("Validation error")
    return figure


def score_histograms(keypoints: Sequence[str], counts: np.ndarray, threshold: float) -> Figure:
    """One small histogram of peak scores per keypoint, over all videos, threshold marked.

    Args:
        keypoints: the K keypoint names, in panel order.
        counts: (K, len(SCORE_BINS) - 1) point counts per keypoint and score bin.
        threshold: the score below which a point counts as low; bars below it are red, and each
            panel's title gives the fraction of its scored points below it.
    """
    n_columns = min(len(keypoints), 5)
    n_rows = -(-len(keypoints) // n_columns)
    figure = _new_figure(2.1 * n_columns + 0.5, 1.7 * n_rows + 0.6)
    widths = np.diff(SCORE_BINS)  # (n_bins,)
    panels = figure.subplots(n_rows, n_columns, sharex=True, squeeze=False)
    for index, axes in enumerate(panels.flat):
        if index >= len(keypoints):
            axes.set_visible(False)
            continue
        total = counts[index].sum()
        fractions = counts[index] / total if total else counts[index].astype(float)  # (n_bins,)
        low = SCORE_BINS[:-1] < threshold
        axes.bar(SCORE_BINS[:-1], fractions, width=widths, align="edge", color=np.where(low, "#c44e52", "#4c72b0"))
        axes.axvline(threshold, color="black", linewidth=0.8, linestyle="--")
        below = counts[index][low].sum() / total if total else float("nan")
        axes.set_title(f"{keypoints[index]}  ({below:.0%} < {threshold:g})", fontsize="small")
        axes.tick_params(labelsize="x-small", labelbottom=index + n_columns >= len(keypoints))
    figure.supxlabel("score", fontsize="small")
    figure.supylabel("fraction of points", fontsize="small")
    return figure


def trajectory_plot(table: pd.DataFrame, keypoints: Sequence[str], threshold: float, title: str) -> Figure:
    """Plot x and y (px) against time (s) for every keypoint of one video; low-score points marked.

    Args:
        table: one video's trajectory rows with `time_s`, `instance`, `keypoint`, `x`, `y`,
            `score`; NaN coordinates (missing points) leave gaps.
        keypoints: keypoint names in legend order; each gets one colour in both panels.
        threshold: points scoring below it (or with no score) get an "x" marker.
        title: the figure title (the video's name).
    """
    figure = _new_figure(10.0, 4.8)
    x_axes, y_axes = figure.subplots(2, 1, sharex=True)
    colors = dict(zip(keypoints, _colors(len(keypoints)), strict=True))
    instances = sorted(table["instance"].unique())
    table = table.sort_values(["instance", "keypoint", "time_s"])
    for (instance, keypoint), rows in table.groupby(["instance", "keypoint"], sort=False, observed=True):
        style = _LINESTYLES[instances.index(instance) % len(_LINESTYLES)]
        low = ~(rows["score"].to_numpy() >= threshold)  # (n,) NaN scores count as low
        for axes, column in ((x_axes, "x"), (y_axes, "y")):
            axes.plot(rows["time_s"], rows[column], color=colors[keypoint], linestyle=style, linewidth=0.8)
            axes.plot(
                rows["time_s"][low], rows[column][low], linestyle="none", marker="x", markersize=3,
                color=colors[keypoint], alpha=0.8,
            )  # fmt: skip
    x_axes.set_ylabel("x (px)")
    y_axes.set_ylabel("y (px)")
    y_axes.invert_yaxis()  # image rows grow downwards; up in the plot is up in the frame
    y_axes.set_xlabel("time (s)")
    figure.suptitle(title)
    handles = [Line2D([], [], color=colors[k], label=k) for k in keypoints]
    handles.append(Line2D([], [], color="grey", linestyle="none", marker="x", label=f"score < {threshold:g}"))
    if len(instances) > 1:
        handles += [
            Line2D([], [], color="grey", linestyle=_LINESTYLES[i % len(_LINESTYLES)], label=f"instance {n}")
            for i, n in enumerate(instances)
        ]
    figure.legend(handles=handles, loc="outside right upper", fontsize="small", frameon=False)
    return figure


def low_fraction_plot(keypoints: Sequence[str], fractions: np.ndarray, threshold: float) -> Figure:
    """Share of low-score points per keypoint across videos: one dot per video, the median as a bar.

    Scales to thousands of videos (dots are small and jittered sideways).

    Args:
        keypoints: the K keypoint names, one column each, coloured as in the other figures.
        fractions: (V, K) share of each video's points of that keypoint below the threshold or missing.
        threshold: the score threshold, for the axis label.
    """
    figure = _new_figure(max(5.0, 0.55 * len(keypoints) + 2.0), 3.4)
    axes = figure.add_subplot()
    colors = _colors(len(keypoints))
    rng = np.random.default_rng(0)  # the same jitter every time
    for k in range(len(keypoints)):
        values = 100 * fractions[:, k]  # (V,) percent
        jitter = rng.uniform(-0.25, 0.25, len(values)) if len(values) > 1 else np.zeros(len(values))
        size = 14 if len(values) < 200 else 4
        axes.scatter(k + jitter, values, s=size, color=colors[k], alpha=0.7, linewidths=0)
        axes.hlines(np.median(values), k - 0.35, k + 0.35, color="black", linewidth=1.5)
    crowded = len(keypoints) > 6
    rotation, align = (45, "right") if crowded else (0, "center")
    axes.set_xticks(range(len(keypoints)), keypoints, rotation=rotation, ha=align)
    axes.set_ylabel(f"points with score < {threshold:g} (%)")
    axes.set_ylim(-2, 102)
    axes.set_title(f"Low-score points, {fractions.shape[0]} videos", fontsize="medium")
    return figure
