"""Accuracy of an exported model on one split of a training dataset.

Predictions come from `posecore.predict.Predictor`, the same path video inference takes.
Errors are Euclidean distances in image pixels between predicted and labeled (x, y); an
unlabeled (NaN) keypoint is skipped, never counted as an error of zero. Besides the
per-keypoint RMSE, mean, median and 90th percentile, PCK (the fraction of labeled points
within t pixels) is reported at several thresholds. `plot_predictions` draws predictions
against labels on test frames; `learning_curve` trains on growing subsets of the training
frames and reports test error against their number (LEAP's Fig. 2).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from posecore import __version__
from posecore.io.atomic import atomic_path
from posecore.io.dataset import Split, TrainingDataset
from posecore.models.export import LoadedModel
from posecore.predict import Predictor

PCK_THRESHOLDS_PX: tuple[float, ...] = (2.0, 5.0, 10.0, 20.0)


@dataclass(frozen=True, eq=False)
class EvaluationResult:
    """Per-keypoint and overall errors on one split.

    Attributes:
        split: the split evaluated.
        n_frames: frames evaluated.
        n_labeled: labeled keypoints (x and y finite) among them.
        rmse_px: root mean squared error over every labeled keypoint, in image pixels.
        per_keypoint: keypoint name -> {"rmse_px", "mean_px", "median_px", "p90_px", "n_labeled"}.
        errors: one row per (frame, keypoint): frame (index in the dataset), keypoint, x, y,
            score, x_true, y_true, error_px (NaN where the keypoint is unlabeled).
        model_sha256: hash of the model file ("" when unknown).
        dataset_hash: content hash of the dataset ("" when unknown).
        pck: keypoint name -> {threshold in pixels -> fraction of its labeled points within it}.
        pck_all: threshold in pixels -> fraction of all labeled points within it.
    """

    split: str
    n_frames: int
    n_labeled: int
    rmse_px: float
    per_keypoint: dict[str, dict[str, float]]
    errors: pd.DataFrame = field(repr=False)
    model_sha256: str = ""
    dataset_hash: str = ""
    pck: dict[str, dict[float, float]] = field(default_factory=dict)
    pck_all: dict[float, float] = field(default_factory=dict)

    def metrics(self) -> dict[str, Any]:
        """The summary as JSON-ready plain types (NaN becomes None).

        The contract with the QC report: `keypoints` (names), and per keypoint name
        `rmse_px`, `mean_px`, `median_px`, `p90_px`, `n_labeled`; `rmse_px_all` over every
        labeled point; `pck_thresholds_px`, `pck_all` (threshold -> fraction, keys as strings)
        and `pck` (keypoint name -> threshold -> fraction).
        """
        names = list(self.per_keypoint)
        per_statistic = {
            statistic: {name: self.per_keypoint[name][statistic] for name in names}
            for statistic in ("rmse_px", "mean_px", "median_px", "p90_px", "n_labeled")
        }
        return _json_ready(
            {
                "split": self.split,
                "n_frames": self.n_frames,
                "n_labeled_all": self.n_labeled,
                "keypoints": names,
                "rmse_px_all": self.rmse_px,
                **per_statistic,
                "pck_thresholds_px": list(self.pck_all),
                "pck_all": {f"{t:g}": v for t, v in self.pck_all.items()},
                "pck": {name: {f"{t:g}": v for t, v in values.items()} for name, values in self.pck.items()},
                "model_sha256": self.model_sha256,
                "dataset_hash": self.dataset_hash,
                "posecore_version": __version__,
            }
        )


def score_predictions(
    predictions: np.ndarray,
    keypoints: np.ndarray,
    keypoint_names: Sequence[str],
    frames: np.ndarray | None = None,
    split: str = "test",
    pck_thresholds_px: Sequence[float] = PCK_THRESHOLDS_PX,
) -> EvaluationResult:
    """Errors of predictions against labels.

    Args:
        predictions: (N, K, 3) as (x, y, score) in image pixels.
        keypoints: (N, K, 2) labeled (x, y) in image pixels, NaN where unlabeled.
        keypoint_names: the K names.
        frames: (N,) frame indices for the table (default 0..N-1).
        split: recorded in the result.
        pck_thresholds_px: distances in pixels at which PCK is reported.
    """
    n, k = keypoints.shape[:2]
    if predictions.shape != (n, k, 3):
        raise ValueError(f"predictions must be (N, K, 3) = ({n}, {k}, 3), got {predictions.shape}")
    frames = np.arange(n) if frames is None else np.asarray(frames)
    labeled = np.isfinite(keypoints).all(axis=-1)  # (N, K)
    error = np.linalg.norm(predictions[..., :2] - keypoints, axis=-1)  # (N, K), NaN where unlabeled
    errors = pd.DataFrame(
        {
            "frame": np.repeat(frames, k).astype(np.int64),
            "keypoint": np.tile(np.asarray(keypoint_names, dtype=object), n),
            "x": predictions[..., 0].ravel(),
            "y": predictions[..., 1].ravel(),
            "score": predictions[..., 2].ravel(),
            "x_true": keypoints[..., 0].ravel(),
            "y_true": keypoints[..., 1].ravel(),
            "error_px": np.where(labeled, error, np.nan).ravel(),
        }
    )
    per_keypoint = {}
    for j, name in enumerate(keypoint_names):
        e = error[labeled[:, j], j].astype(np.float64)
        per_keypoint[name] = {
            "rmse_px": float(np.sqrt(np.mean(e**2))) if len(e) else math.nan,
            "mean_px": float(np.mean(e)) if len(e) else math.nan,
            "median_px": float(np.median(e)) if len(e) else math.nan,
            "p90_px": float(np.percentile(e, 90)) if len(e) else math.nan,
            "n_labeled": len(e),
        }
    all_errors = error[labeled].astype(np.float64)
    thresholds = [float(t) for t in pck_thresholds_px]
    pck = {
        name: {t: _fraction_within(error[labeled[:, j], j], t) for t in thresholds}
        for j, name in enumerate(keypoint_names)
    }
    return EvaluationResult(
        split=split,
        n_frames=n,
        n_labeled=int(labeled.sum()),
        rmse_px=float(np.sqrt(np.mean(all_errors**2))) if len(all_errors) else math.nan,
        per_keypoint=per_keypoint,
        errors=errors,
        pck=pck,
        pck_all={t: _fraction_within(all_errors, t) for t in thresholds},
    )


def _fraction_within(errors: np.ndarray, threshold: float) -> float:
    """Fraction of `errors` at most `threshold`; NaN when there are none."""
    return float(np.mean(errors <= threshold)) if len(errors) else math.nan


def evaluate(
    loaded_model: LoadedModel,
    dataset: TrainingDataset,
    split: Split = "test",
    device: str = "cpu",
    batch_size: int = 16,
) -> EvaluationResult:
    """Predict every frame of a split with `Predictor` and score it against the labels.

    Raises:
        ValueError: the split has no frames, the model's keypoints are not the dataset's, or the
            dataset holds several animals per frame (`posecore.multi.evaluate` measures those).
    """
    if dataset.multi_animal:
        raise ValueError("a multi-animal dataset: evaluate its top-down model with posecore.multi.evaluate")
    if tuple(loaded_model.meta.keypoint_names) != tuple(dataset.keypoint_names):
        raise ValueError(
            f"the model's keypoints {list(loaded_model.meta.keypoint_names)} differ from the dataset's "
            f"{list(dataset.keypoint_names)}"
        )
    indices = dataset.indices(split)
    if len(indices) == 0:
        raise ValueError(f"the dataset has no {split!r} frames")
    predictions = Predictor(loaded_model, device=device, batch_size=batch_size).predict(dataset.images[indices])
    result = score_predictions(predictions, dataset.keypoints[indices], dataset.keypoint_names, indices, split)
    return replace(result, model_sha256=loaded_model.sha256, dataset_hash=dataset.content_hash())


def write_evaluation(result: EvaluationResult, out_dir: str | Path) -> tuple[Path, Path]:
    """Write `metrics.json` (the summary) and `predictions.parquet` (the per-point table) atomically."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics_path, table_path = out_dir / "metrics.json", out_dir / "predictions.parquet"
    with atomic_path(table_path) as tmp_table, atomic_path(metrics_path) as tmp_metrics:
        tmp_metrics.write_text(json.dumps(result.metrics(), indent=2) + "\n")
        result.errors.to_parquet(tmp_table, index=False)
    return metrics_path, table_path


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def plot_predictions(
    dataset: TrainingDataset, result: EvaluationResult, path: str | Path, max_frames: int = 12, columns: int = 4
) -> Path:  # pragma: no mutate block (figure drawing: no number comes from it)
    """A PNG of predictions against labels on evaluated frames, the worst first.

    Each panel is one frame: labels are open circles, predictions crosses of the same colour
    (one colour per keypoint), joined by a line that shows the error. Frames are ordered by
    their largest error, so a reader sees the failures first.

    Args:
        dataset: the dataset `result` was computed on (its images are drawn).
        result: from `evaluate` (its `errors` table gives predictions and labels).
        path: the PNG to write (atomically; its folder is created).
        max_frames: panels at most.
        columns: panels per row.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    table = result.errors
    worst = table.groupby("frame")["error_px"].max().fillna(-1.0).sort_values(ascending=False)
    frames = list(worst.index[:max_frames])
    names = list(result.per_keypoint)
    colours = plt.get_cmap("tab20" if len(names) > 10 else "tab10")
    rows = max(1, math.ceil(len(frames) / columns))
    figure, axes = plt.subplots(
        rows,
        columns,
        figsize=(3.2 * columns, 3.2 * rows * dataset.image_size[0] / dataset.image_size[1]),
        squeeze=False,
    )
    for ax in axes.ravel():
        ax.axis("off")
    for ax, frame in zip(axes.ravel(), frames, strict=False):
        image = dataset.images[int(frame)]
        ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=255)
        points = table[table["frame"] == frame]
        for j, name in enumerate(names):
            row = points[points["keypoint"] == name].iloc[0]
            colour = colours(j % colours.N)
            ax.plot(row["x"], row["y"], "x", color=colour, markersize=6, mew=1.5)
            if np.isfinite(row["x_true"]):
                ax.plot(row["x_true"], row["y_true"], "o", mfc="none", color=colour, markersize=7)
                ax.plot([row["x_true"], row["x"]], [row["y_true"], row["y"]], "-", color=colour, lw=1)
        ax.set_title(f"frame {int(frame)}: max {worst[frame]:.1f} px", fontsize=8)
    handles = [
        plt.Line2D([], [], color=colours(j % colours.N), marker="o", ls="", label=n) for j, n in enumerate(names)
    ]
    figure.legend(handles=handles, loc="lower center", ncol=min(len(names), 6), fontsize=7, frameon=False)
    figure.suptitle(f"{result.split}: labels (o) and predictions (x), RMSE {result.rmse_px:.2f} px", fontsize=10)
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            figure.savefig(tmp, dpi=100, format="png")
    finally:
        plt.close(figure)
    return path


def curve_sizes(requested: Sequence[int], n_train: int) -> list[int]:
    """The training-set sizes of a learning curve over `n_train` frames, ascending.

    The requested sizes below n_train, then n_train itself: the whole split always ends the curve.
    """
    if n_train < 1:
        raise ValueError("the dataset has no 'train' frames")
    return sorted({n for n in requested if 1 <= n < n_train} | {n_train})


def learning_curve(
    dataset: TrainingDataset,
    model_config: Any,
    train_config: Any,
    sizes: Sequence[int],
    out_dir: str | Path,
    seed: int = 0,
    device: str = "cpu",
) -> pd.DataFrame:
    """Test error against the number of training frames (LEAP's Fig. 2): how many frames to label.

    For each size n, trains on the first n frames of one seeded permutation of the "train"
    split (so smaller subsets are nested in larger ones), selects on "val", and evaluates on
    "test". Imports the training code (Lightning) only when called.

    Args:
        dataset: a dataset with "train", "val" and "test" frames.
        model_config: a `posecore.train.ModelConfig`.
        train_config: a `posecore.train.TrainConfig`.
        sizes: training-set sizes, each between 1 and the number of "train" frames.
        out_dir: one sub-folder per size (`n{size}/`), plus `learning_curve.csv` and `.png`.
        seed: seeds the choice of subsets.
        device: where evaluation runs.

    Returns:
        One row per size: n_train, rmse_px, median_px, p90_px, pck at each threshold, seconds.
    """
    from posecore.models.export import load_model
    from posecore.train.fit import train_model

    train = dataset.indices("train")
    if len(dataset.indices("test")) == 0:
        raise ValueError("the dataset has no 'test' frames to measure the learning curve on")
    bad = [n for n in sizes if not 1 <= n <= len(train)]
    if bad:
        raise ValueError(f"training-set sizes {bad} are not between 1 and the {len(train)} 'train' frames")
    order = np.random.default_rng(seed).permutation(train)
    out_dir = Path(out_dir)
    rows = []
    for n in sorted(set(sizes)):
        trained = train_model(dataset, model_config, train_config, out_dir / f"n{n}", train_indices=order[:n])
        result = evaluate(load_model(trained.model_path), dataset, "test", device=device)
        errors = result.errors["error_px"].dropna().to_numpy()
        rows.append(
            {
                "n_train": n,
                "rmse_px": result.rmse_px,
                "median_px": float(np.median(errors)),
                "p90_px": float(np.percentile(errors, 90)),
                **{f"pck_{t:g}px": v for t, v in result.pck_all.items()},
                "seconds": trained.seconds,
            }
        )
    curve = pd.DataFrame(rows)
    curve.to_csv(out_dir / "learning_curve.csv", index=False)
    _plot_curve(curve, out_dir / "learning_curve.png")
    return curve


def _plot_curve(curve: pd.DataFrame, path: Path) -> None:  # pragma: no mutate block (figure drawing)
    """Test RMSE, median and 90th percentile against training frames, on a log x axis."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, ax = plt.subplots(figsize=(5, 3.5))
    for column, style in (("rmse_px", "o-"), ("median_px", "s--"), ("p90_px", "^:")):
        ax.plot(curve["n_train"], curve[column], style, label=column.removesuffix("_px"))
    ax.set_xscale("log")
    ax.set_xlabel("labeled training frames")
    ax.set_ylabel("test error (px)")
    ax.legend(frameon=False)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
