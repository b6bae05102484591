"""Figures of the label-QC and training-QC sections, drawn like the rest of the report (see `plots`).

Keypoint k has colour `plots._colors(K)[k]` in every figure, so a keypoint looks the same in the
label positions, the error distribution and the worst test frames. Images drawn under points use
matplotlib's default extent, which puts pixel (0, 0)'s centre at (0, 0): the contract's coordinates.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from posecore.qc.plots import _colors, _new_figure


def _grey(image: np.ndarray) -> np.ndarray:
    """(H, W) float grey of an (H, W, C) or (H, W) uint8 image."""
    return image.astype(np.float32).mean(axis=-1) if image.ndim == 3 else image.astype(np.float32)


def _show(axes, image: np.ndarray, **style) -> None:
    """Draw `image` with pixel centres at integer (x, y), without axes."""
    height, width = image.shape[:2]
    axes.imshow(image, cmap="gray", vmin=0, vmax=255, **style)
    axes.set_xlim(-0.5, width - 0.5)
    axes.set_ylim(height - 0.5, -0.5)  # rows grow downwards
    axes.set_axis_off()


def label_positions(backdrop: np.ndarray, keypoints: np.ndarray, names: Sequence[str]) -> Figure:
    """One small panel per keypoint: all its labeled (x, y) over a dimmed sample image.

    Args:
        backdrop: (H, W, C) uint8 image shown dimmed (and posterized to 8 grey levels, which
            keeps the PNG small) under the points.
        keypoints: (N, K, 2) labels as (x, y) pixels, NaN where missing.
        names: the K keypoint names, panel titles.
    """
    n_keypoints = len(names)
    height, width = backdrop.shape[:2]
    levels = np.round((255.0 - _grey(backdrop)) / 36.0) * 36.0  # (H, W) darkness in 8 steps
    dimmed = np.clip(255.0 - 0.3 * levels, 0, 255).astype(np.uint8)  # (H, W)
    columns = min(n_keypoints, 6)
    rows = -(-n_keypoints // columns)
    panel = min(3.0, max(1.6, 7.0 / columns))  # inches; a few keypoints get larger panels
    figure = _new_figure(panel * columns, (panel * height / width + 0.25) * rows)
    colors = _colors(n_keypoints)
    for k, axes in enumerate(figure.subplots(rows, columns, squeeze=False).flat):
        if k >= n_keypoints:
            axes.set_visible(False)
            continue
        _show(axes, dimmed)
        points = keypoints[:, k]  # (N, 2)
        points = points[np.isfinite(points).all(axis=-1)]
        axes.scatter(points[:, 0], points[:, 1], s=7, color=colors[k], alpha=0.8, edgecolors="0.15", linewidths=0.3)
        axes.set_title(f"{names[k]} ({len(points)})", fontsize="x-small")
    return figure


def error_distribution(names: Sequence[str], errors: Sequence[np.ndarray], rmse: Sequence[float]) -> Figure:
    """Every test error (px) per keypoint as jittered dots, with its median, 90th percentile and RMSE.

    Args:
        names: the K keypoint names.
        errors: K arrays of the labeled points' errors in pixels (may be empty).
        rmse: K root-mean-square errors (NaN where a keypoint has no labeled point).
    """
    n_keypoints = len(names)
    figure = _new_figure(max(5.0, 0.42 * n_keypoints + 2.0), 3.4)
    axes = figure.add_subplot()
    colors = _colors(n_keypoints)
    rng = np.random.default_rng(0)
    every = np.concatenate([np.asarray(e, dtype=float) for e in errors]) if errors else np.zeros(0)
    # A log scale when a few failures would flatten the rest: the largest error over 10x the 75th percentile.
    log_scale = len(every) > 0 and every.max() > 10 * max(np.percentile(every, 75), 0.1)
    for k, values in enumerate(errors):
        values = np.asarray(values, dtype=float)
        if not len(values):
            continue
        shown = np.maximum(values, 0.05) if log_scale else values
        axes.scatter(k + rng.uniform(-0.22, 0.22, len(values)), shown, s=6, color=colors[k], alpha=0.5, linewidths=0)
        for quantile, shade in ((50, "black"), (90, "0.5")):
            level = max(np.percentile(values, quantile), 0.05) if log_scale else np.percentile(values, quantile)
            axes.plot([k - 0.32, k + 0.32], [level, level], color=shade, linewidth=2)
        axes.plot(k, rmse[k], marker="D", color="#c44e52", markersize=5, linestyle="none")
    if log_scale:
        axes.set_yscale("log")
    crowded = n_keypoints > 6
    labels = [n if len(e) else f"{n}\n(no labels)" for n, e in zip(names, errors, strict=True)]
    axes.set_xticks(np.arange(n_keypoints), labels, rotation=45 if crowded else 0, ha="right" if crowded else "center")
    axes.set_xlim(-0.6, n_keypoints - 0.4)
    axes.set_ylabel("error (px)" + (", log scale" if log_scale else ""))
    axes.set_title("Test error per keypoint")
    handles = [
        Line2D([], [], color="black", linewidth=2, label="median"),
        Line2D([], [], color="0.5", linewidth=2, label="90th percentile"),
        Line2D([], [], color="#c44e52", marker="D", markersize=5, linestyle="none", label="RMSE"),
    ]
    axes.legend(handles=handles, loc="best", fontsize="small")
    return figure


def _square_around(points: np.ndarray, height: int, width: int, margin: float = 0.3) -> tuple[float, float, float]:
    """(x0, y0, side) of a square view around (M, 2) (x, y) points, inside an (H, W) image where it fits.

    The square covers the points' bounding box grown by `margin` of its size and 12 px on each side,
    at least 48 px and at most the image's larger side.
    """
    finite = points[np.isfinite(points).all(axis=-1)]  # (M', 2)
    if not len(finite):
        return -0.5, -0.5, float(max(height, width))
    low, high = finite.min(axis=0), finite.max(axis=0)  # (2,) each, (x, y)
    side = float(np.clip((high - low).max() * (1 + 2 * margin) + 24.0, 48.0, max(height, width)))
    corner = (low + high) / 2 - side / 2  # (2,)
    for axis, size in ((0, width), (1, height)):  # keep the view inside the image where it can be
        corner[axis] = np.clip(corner[axis], -0.5, size - 0.5 - side) if side <= size else (size - 1 - side) / 2
    return float(corner[0]), float(corner[1]), side


def worst_frames(
    images: Sequence[np.ndarray],
    predicted: np.ndarray,
    labels: np.ndarray,
    titles: Sequence[str],
    names: Sequence[str],
    columns: int = 4,
) -> Figure:
    """Square panels of test frames, zoomed on the animal: label as circle, prediction as cross, a line between.

    Each panel shows the square of its image around its labels and predictions (so a far-off
    prediction widens the view), drawn in pixel coordinates.

    Args:
        images: P images (H, W, C) uint8 (each its own size), in panel order.
        predicted: (P, K, 2) predicted (x, y) pixels, NaN where the model gave none.
        labels: (P, K, 2) labeled (x, y) pixels, NaN where not labeled.
        titles: P panel titles (the frame's source and its error).
        names: the K keypoint names, for the legend.
        columns: panels per row at most.
    """
    n_panels, n_keypoints = len(images), len(names)
    columns = max(1, min(columns, n_panels))
    rows = -(-n_panels // columns)
    panel = 2.1
    figure = _new_figure(panel * columns, (panel + 0.4) * rows + 0.2 + 0.15 * (n_keypoints // 7 + 1))
    colors = _colors(n_keypoints)
    for p, axes in enumerate(figure.subplots(rows, columns, squeeze=False).flat):
        if p >= n_panels:
            axes.set_visible(False)
            continue
        image = images[p]
        _show(axes, image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image)
        for k in range(n_keypoints):
            (px, py), (lx, ly) = predicted[p, k], labels[p, k]
            style = {"color": colors[k], "markersize": 6, "linestyle": "none"}
            if np.isfinite(lx) and np.isfinite(px):
                axes.plot([lx, px], [ly, py], color=colors[k], linewidth=1.0)
            axes.plot(lx, ly, marker="o", markerfacecolor="none", markeredgewidth=1.2, **style)
            axes.plot(px, py, marker="x", markeredgewidth=1.4, **style)
        x0, y0, side = _square_around(np.concatenate([labels[p], predicted[p]]), *image.shape[:2])
        axes.set_xlim(x0, x0 + side)
        axes.set_ylim(y0 + side, y0)  # rows grow downwards
        axes.set_title(titles[p], fontsize="x-small")
    handles = [Line2D([], [], color=colors[k], marker="o", linestyle="none", label=n) for k, n in enumerate(names)]
    handles += [
        Line2D([], [], color="black", marker="o", markerfacecolor="none", linestyle="none", label="label"),
        Line2D([], [], color="black", marker="x", linestyle="none", label="prediction"),
    ]
    figure.legend(
        handles=handles, loc="outside lower center", ncol=min(len(handles), 7), fontsize="x-small", frameon=False
    )
    return figure
