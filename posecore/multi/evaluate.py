"""Accuracy of a top-down model on one split of a multi-animal dataset: OKS mAP, animal counts, matched errors.

`evaluate_topdown(model, dataset, split="test")` predicts every frame of the split with the
`TopDownPredictor` (the path video inference takes) and reports:

- OKS mAP with SLEAP's sigma (0.025) and with DeepLabCut's (0.1), as pycocotools computes it
  (`posecore.multi.oks.pose_map`), each detection ranked by its instance score;
- per frame, the labeled animals, the detections and the matches (pairs of OKS >= 0.5 with
  DeepLabCut's sigma, one-to-one, the most similar first), so every labeled animal of a frame
  is either detected or counted missing;
- per keypoint, the pixel error of the matched animals' keypoints (RMSE, median, 90th
  percentile), as DeepLabCut reports its multi-animal RMSE.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from posecore import __version__
from posecore.io.atomic import atomic_path
from posecore.io.dataset import Split, TrainingDataset
from posecore.multi.oks import DLC_SIGMA, SLEAP_SIGMA, PoseAP, oks_matrix, pose_map
from posecore.multi.predict import Detections, TopDownModel, TopDownPredictor

MATCH_OKS = 0.5
"""A detection and a labeled animal are the same animal at or above this OKS (DeepLabCut's sigma)."""


@dataclass(frozen=True, eq=False)
class MultiEvaluation:
    """Accuracy of a top-down model on one split.

    Attributes:
        split: the split evaluated.
        keypoints: the K keypoint names.
        map_sleap: mAP with SLEAP's OKS sigma.
        map_dlc: mAP with DeepLabCut's OKS sigma.
        counts: one row per frame: frame (dataset row), labeled, detected, matched, missed, false.
        errors: one row per matched animal and keypoint: frame, instance (its dataset slot),
            keypoint, x, y, score, x_true, y_true, error_px (NaN where unlabeled).
        model_sha256: the model file's hash.
        dataset_hash: the dataset's content hash.
    """

    split: str
    keypoints: tuple[str, ...]
    map_sleap: PoseAP
    map_dlc: PoseAP
    counts: pd.DataFrame = field(repr=False)
    errors: pd.DataFrame = field(repr=False)
    model_sha256: str = ""
    dataset_hash: str = ""

    def per_keypoint(self) -> dict[str, dict[str, float | None]]:
        """RMSE, median and 90th percentile of the matched animals' keypoint errors, px, per keypoint."""
        out: dict[str, dict[str, float | None]] = {}
        for name in self.keypoints:
            values = self.errors.loc[self.errors["keypoint"] == name, "error_px"].to_numpy(float)
            values = values[np.isfinite(values)]
            out[name] = {"rmse_px": None, "median_px": None, "p90_px": None}
            if len(values):
                out[name] = {
                    "rmse_px": float(np.sqrt(np.mean(values**2))),
                    "median_px": float(np.median(values)),
                    "p90_px": float(np.percentile(values, 90)),
                }
        return out

    def summary(self) -> dict[str, Any]:
        """The metrics as plain types (what `write_multi_evaluation` writes as metrics.json)."""
        values = self.errors["error_px"].to_numpy(float)
        values = values[np.isfinite(values)]
        per = self.per_keypoint()
        totals = {key: int(self.counts[key].sum()) for key in ("labeled", "detected", "matched", "missed", "false")}
        return {
            "split": self.split,
            "n_frames": len(self.counts),
            "keypoints": list(self.keypoints),
            "map_sleap_sigma": self.map_sleap.map,
            "map_dlc_sigma": self.map_dlc.map,
            "mar_sleap_sigma": self.map_sleap.mar,
            "mar_dlc_sigma": self.map_dlc.mar,
            "oks_sigma": {"sleap": SLEAP_SIGMA, "dlc": DLC_SIGMA},
            "animals": totals,
            "rmse_px": {k: v["rmse_px"] for k, v in per.items()},
            "median_px": {k: v["median_px"] for k, v in per.items()},
            "p90_px": {k: v["p90_px"] for k, v in per.items()},
            "rmse_px_all": float(np.sqrt(np.mean(values**2))) if len(values) else None,
            "model_sha256": self.model_sha256,
            "dataset_hash": self.dataset_hash,
            "posecore_version": __version__,
        }


def evaluate_topdown(
    model: TopDownModel, dataset: TrainingDataset, split: Split = "test", batch_size: int = 8, device: str = "cpu"
) -> MultiEvaluation:
    """Predict the split's frames with the top-down model and measure them against the labels (module docstring)."""
    rows = dataset.indices(split)
    predictor = TopDownPredictor(model, device, batch_size)
    found = [predictor.predict(dataset.images[rows[i : i + batch_size]]) for i in range(0, len(rows), batch_size)]
    detections = Detections(
        *(np.concatenate([getattr(d, f) for d in found]) for f in ("peaks", "instance_score", "valid", "centres"))
    )
    return measure(detections, dataset, rows, split, model.sha256)


def measure(
    detections: Detections, dataset: TrainingDataset, rows: np.ndarray, split: str = "test", model_sha256: str = ""
) -> MultiEvaluation:
    """The metrics of detections (one frame each of `rows`, dataset rows) against the dataset's labels."""
    truth, guesses, scores, counts, errors = [], [], [], [], []
    for j, row in enumerate(rows):
        labeled = np.flatnonzero(np.isfinite(dataset.keypoints[row]).all(axis=-1).any(axis=-1))
        animals = dataset.keypoints[row, labeled].astype(np.float64)  # (G, K, 2)
        valid = np.flatnonzero(detections.valid[j])
        guess = detections.peaks[j, valid].astype(np.float64)  # (P, K, 3)
        truth.append(animals)
        guesses.append(guess[..., :2])
        scores.append(detections.instance_score[j, valid])
        pairs = _match(animals, guess[..., :2])
        counts.append(
            (int(row), len(labeled), len(valid), len(pairs), len(labeled) - len(pairs), len(valid) - len(pairs))
        )
        for g, p in pairs:
            for k, name in enumerate(dataset.keypoint_names):
                x_true, y_true = animals[g, k]
                x, y, score = guess[p, k]
                error = float(np.hypot(x - x_true, y - y_true))
                errors.append((int(row), int(labeled[g]), name, x, y, score, x_true, y_true, error))
    return MultiEvaluation(
        split=split,
        keypoints=tuple(dataset.keypoint_names),
        map_sleap=pose_map(truth, guesses, scores, sigma=SLEAP_SIGMA),
        map_dlc=pose_map(truth, guesses, scores, sigma=DLC_SIGMA),
        counts=pd.DataFrame(counts, columns=["frame", "labeled", "detected", "matched", "missed", "false"]),
        errors=pd.DataFrame(
            errors, columns=["frame", "instance", "keypoint", "x", "y", "score", "x_true", "y_true", "error_px"]
        ),
        model_sha256=model_sha256,
        dataset_hash=dataset.content_hash(),
    )


def _match(truth: np.ndarray, guess: np.ndarray) -> list[tuple[int, int]]:
    """One-to-one pairs (labeled, detected) of OKS >= MATCH_OKS with DeepLabCut's sigma, maximising the total OKS."""
    if not len(truth) or not len(guess):
        return []
    similarity = np.nan_to_num(oks_matrix(truth, guess, DLC_SIGMA), nan=0.0)  # (G, P)
    rows, cols = linear_sum_assignment(-similarity)
    return [(int(g), int(p)) for g, p in zip(rows, cols, strict=True) if similarity[g, p] >= MATCH_OKS]


def write_multi_evaluation(result: MultiEvaluation, out_dir: str | Path) -> tuple[Path, Path]:
    """Write metrics.json and predictions.parquet (the matched keypoints) into `out_dir`, atomically."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics, predictions = out_dir / "metrics.json", out_dir / "predictions.parquet"
    with atomic_path(metrics) as tmp:
        tmp.write_text(json.dumps(result.summary(), indent=2, default=float) + "\n")
    with atomic_path(predictions) as tmp:
        result.errors.to_parquet(tmp, index=False)
    return metrics, predictions
