"""Accuracy of an exported model on one split of a training dataset.

Predictions come from `posecore.predict.Predictor`, the same path video inference takes.
Errors are Euclidean distances in image pixels between predicted and labeled (x, y); an
unlabeled (NaN) keypoint is skipped, never counted as an error of zero.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from posecore import __version__
from posecore.io.dataset import Split, TrainingDataset
from posecore.models.export import LoadedModel
from posecore.predict import Predictor


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
    """

    split: str
    n_frames: int
    n_labeled: int
    rmse_px: float
    per_keypoint: dict[str, dict[str, float]]
    errors: pd.DataFrame = field(repr=False)
    model_sha256: str = ""
    dataset_hash: str = ""

    def metrics(self) -> dict[str, Any]:
        """The summary as JSON-ready plain types (NaN becomes None).

        The contract with the QC report: `keypoints` (names), and per keypoint name
        `rmse_px`, `mean_px`, `median_px`, `p90_px`, `n_labeled`; `rmse_px_all` over every
        labeled point.
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
) -> EvaluationResult:
    """Errors of predictions against labels.

    Args:
        predictions: (N, K, 3) as (x, y, score) in image pixels.
        keypoints: (N, K, 2) labeled (x, y) in image pixels, NaN where unlabeled.
        keypoint_names: the K names.
        frames: (N,) frame indices for the table (default 0..N-1).
        split: recorded in the result.
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
    return EvaluationResult(
        split=split,
        n_frames=n,
        n_labeled=int(labeled.sum()),
        rmse_px=float(np.sqrt(np.mean(all_errors**2))) if len(all_errors) else math.nan,
        per_keypoint=per_keypoint,
        errors=errors,
    )


def evaluate(
    loaded_model: LoadedModel,
    dataset: TrainingDataset,
    split: Split = "test",
    device: str = "cpu",
    batch_size: int = 16,
) -> EvaluationResult:
    """Predict every frame of a split with `Predictor` and score it against the labels.

    Raises:
        ValueError: the split has no frames, or the model's keypoints are not the dataset's.
    """
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
    tmp_metrics = out_dir / f".metrics.json.tmp-{os.getpid()}"
    tmp_table = out_dir / f".predictions.parquet.tmp-{os.getpid()}"
    try:
        tmp_metrics.write_text(json.dumps(result.metrics(), indent=2) + "\n")
        result.errors.to_parquet(tmp_table, index=False)
        os.replace(tmp_table, table_path)
        os.replace(tmp_metrics, metrics_path)
    finally:
        tmp_metrics.unlink(missing_ok=True)
        tmp_table.unlink(missing_ok=True)
    return metrics_path, table_path


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
