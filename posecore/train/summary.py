"""The training summary: what a run decided from the labels, how it ended, and whether its model is done.

`diagnose(curves, ...)` reads a run's per-epoch validation metrics and returns its warnings:
the model learned nothing (flat confidence maps, or no better than a guess) or little (half the
guess's error or more), or its validation error was still falling when the run ended.
`TrainingSummary` is the run's `training.json` beside its model, written by
`posecore.train.train_model` and read by the QC report and the workflow's closing lines
(`read_summary`). This module imports neither torch nor Lightning.

Notes:
A trained model's peaks are near 1 (the targets' height); a model in the flat-map plateau,
where plain squared error over maps that are nearly all background holds it, outputs maps near
0 everywhere (docs/training.md). "Still falling" compares the best validation RMSE before the
last fifth of the validations with the best at the end: the cosine schedule ends with a small
learning rate, so a done model gains little there; for the same reason a model cut far too short
may fall little there too, and its error against the guess's says it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from posecore.errors import InputError
from posecore.io.atomic import atomic_path

FLAT_PEAK_SCORE = 0.1
"""Mean validation peak below which the maps count as flat (a trained model's are near 1)."""
FINAL_SHARE = 0.2
"""The end of a run, as a share of its validations, over which the error must have settled."""
STILL_FALLING = 0.1
"""Relative fall of the best validation RMSE over the end of the run that means not done."""
LEARNED_LITTLE = 0.5
"""Best validation RMSE, as a share of the mean-position guess's, from which a model has learned little."""
SMOOTHING = 20
"""The validation curve is read as trailing medians of 1/SMOOTHING of its validations (at least 1)."""


@dataclass(frozen=True)
class TrainingSummary:
    """What one training run decided, how it ended and what it warns of (`training.json`).

    Attributes:
        epochs: epochs trained.
        minutes: wall time of the fit.
        stopped_by: "max_epochs", "time limit" (max_minutes) or "early stopping".
        accelerator: where it trained, "cpu" or "gpu".
        best_epoch: the epoch of the exported (best) checkpoint, or None.
        best_val_rmse_px: its validation RMSE in pixels.
        best_val_peak_score: its mean validation peak (near 0: flat maps), or None.
        guess_val_rmse_px: the validation RMSE of placing each keypoint at its mean training position.
        decisions: the settings decided from the labels, each {"key", "value", "reason"}.
        warnings: each {"kind", "message"}: kind "not_learned", "learned_little" or "not_converged".
        config: the training config as it ran ("auto" replaced by what was decided).
    """

    epochs: int
    minutes: float
    stopped_by: str
    accelerator: str = "cpu"
    best_epoch: int | None = None
    best_val_rmse_px: float | None = None
    best_val_peak_score: float | None = None
    guess_val_rmse_px: float | None = None
    decisions: tuple[dict[str, Any], ...] = ()
    warnings: tuple[dict[str, str], ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict)

    def write(self, path: str | Path) -> Path:
        """Write the summary as JSON, atomically."""
        with atomic_path(Path(path)) as tmp:
            tmp.write_text(json.dumps(_plain(asdict(self)), indent=2, allow_nan=False) + "\n")
        return Path(path)


def read_summary(path: str | Path) -> TrainingSummary:
    """Read a `training.json`.

    Raises:
        InputError: naming the file: missing, not JSON, or a key missing or of the wrong kind.
    """
    path = Path(path)
    try:
        content = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(path, f"not valid JSON: {error}") from None
    if not isinstance(content, dict):
        raise InputError(path, "expected a JSON object (a training summary)")
    known = TrainingSummary.__dataclass_fields__
    missing = [key for key in ("epochs", "minutes", "stopped_by", "warnings", "decisions") if key not in content]
    if missing:
        raise InputError(path, "required key is missing", where=f"key {missing[0]}")
    for key, wanted in (("warnings", ("kind", "message")), ("decisions", ("key", "value", "reason"))):
        items = content[key]
        if not isinstance(items, list) or not all(isinstance(i, dict) and set(wanted) <= set(i) for i in items):
            raise InputError(path, f"expected a list of objects with {', '.join(wanted)}", where=f"key {key}")
    values = {key: value for key, value in content.items() if key in known}
    values["decisions"] = tuple(values["decisions"])
    values["warnings"] = tuple(values["warnings"])
    return TrainingSummary(**values)


def guess_rmse(train_keypoints: np.ndarray, val_keypoints: np.ndarray) -> float:
    """RMSE in pixels of answering each keypoint's mean training position on the validation labels.

    Args:
        train_keypoints: (N, K, 2) training labels, NaN where not labeled.
        val_keypoints: (M, K, 2) validation labels, NaN where not labeled.
    """
    mean = np.nanmean(np.asarray(train_keypoints, dtype=np.float64), axis=0)  # (K, 2)
    errors = np.linalg.norm(np.asarray(val_keypoints, dtype=np.float64) - mean, axis=-1)  # (M, K), NaN unlabeled
    return float(np.sqrt(np.nanmean(errors**2))) if np.isfinite(errors).any() else math.nan


def diagnose(curves: pd.DataFrame, summary: TrainingSummary) -> tuple[dict[str, str], ...]:
    """Warnings about a finished run whose model is not done, each saying what to change.

    Args:
        curves: one row per epoch with `epoch`, `val/rmse_px` and optionally `val/peak_score`
            (`posecore.train.fit.flatten_metrics`); epochs without validation are NaN there.
        summary: the run: its config as it ran, its decisions, how it stopped, where it
            trained and its `guess_val_rmse_px`.

    Returns:
        Zero, one or two warnings {"kind", "message"}: "not_learned" (flat maps, or no better
        than the guess) or "learned_little" (at least LEARNED_LITTLE of the guess's error), and
        "not_converged" (the best validation RMSE, as trailing medians of
        1/SMOOTHING of the validations, fell by more than STILL_FALLING over the last
        FINAL_SHARE of them, two at least).
    """
    if "val/rmse_px" not in curves.columns:
        return ()
    validated = curves[np.isfinite(curves["val/rmse_px"].to_numpy(dtype=float))]
    if validated.empty:
        return ()
    rmse = validated["val/rmse_px"].to_numpy(dtype=float)  # (V,) one per validation
    best = int(np.argmin(rmse))
    config, guess = summary.config, summary.guess_val_rmse_px
    budget = _budget(config, summary.stopped_by)
    warnings = []
    peak = float(validated["val/peak_score"].iloc[best]) if "val/peak_score" in validated.columns else math.nan
    flat = math.isfinite(peak) and peak < FLAT_PEAK_SCORE
    share = rmse[best] / guess if guess is not None and math.isfinite(guess) and guess > 0 else 0.0
    guessing = share >= 1.0
    if flat or guessing:
        symptoms = []
        if flat:
            symptoms.append(
                f"its confidence maps are flat (mean peak {peak:.3f} on the validation frames; a trained model's "
                "peaks are near 1)"
            )
        if guessing:
            symptoms.append(
                f"its best validation RMSE, {rmse[best]:.1f} px, is no better than placing every keypoint at its "
                f"mean training position ({guess:.1f} px)"
            )
        changes = []
        if not config.get("peak_weight"):
            changes.append("set train.peak_weight to 20 (with 0, models sit on flat maps for hundreds of epochs)")
        changes.append(f"train longer ({budget})")
        if float(config.get("learning_rate", 1e-3)) < 1e-4:
            changes.append(f"raise train.learning_rate (now {config['learning_rate']:g}; the default is 0.001)")
        changes.append("check in the QC report's Labels section that the labels lie on the animal")
        message = f"the model learned nothing: {' and '.join(symptoms)}. What to change: {'; '.join(changes)}."
        warnings.append({"kind": "not_learned", "message": message})
    elif share >= LEARNED_LITTLE:
        message = (
            f"the model has learned little: its best validation RMSE, {rmse[best]:.1f} px, is {share:.0%} of that "
            f"of placing every keypoint at its mean training position ({guess:.1f} px). What to change: train "
            f"longer ({budget})."
        )
        warnings.append({"kind": "learned_little", "message": message})
    final = max(2, math.ceil(FINAL_SHARE * len(rmse)))
    window = max(1, len(rmse) // SMOOTHING)  # a lucky validation on a few frames is no trend
    smooth = pd.Series(rmse).rolling(window, min_periods=1).median().to_numpy()  # (V,) trailing medians
    if len(rmse) > final:
        before, after = float(np.min(smooth[:-final])), float(np.min(smooth))
        fall = 1.0 - after / before if before > 0 else 0.0
        if fall > STILL_FALLING:
            changes = [f"a longer budget ({budget})"]
            if summary.accelerator == "cpu":
                changes.append("a GPU, which trains about nine times the epochs in the same minutes (gpus: 1)")
            decided = {decision["key"] for decision in summary.decisions}
            if config.get("crop_size") == 0 and "crop_size" not in decided:
                changes.append("crops (train.crop_size: auto), which make each step cheaper where the animal is small")
            last = int(validated["epoch"].iloc[-1]) + 1
            medians = f" (medians of {window} in a row)" if window > 1 else ""
            message = (
                f"the model is not done: its validation RMSE was still falling when training stopped "
                f"({summary.stopped_by}, after {last} epochs): the best fell from {before:.1f} px to {after:.1f} px "
                f"({fall:.0%}) over the last {final} of {len(rmse)} validations{medians}. What to change: "
                f"{'; '.join(changes)}."
            )
            warnings.append({"kind": "not_converged", "message": message})
    return tuple(warnings)


def _budget(config: Mapping[str, Any], stopped_by: str) -> str:
    """The config keys that set the run's length, with their values, for a message."""
    minutes = f"train.max_minutes, now {config.get('max_minutes', 0):g}"
    if config.get("max_epochs") == "auto":
        return minutes
    epochs = f"train.max_epochs, now {config.get('max_epochs')}"
    if stopped_by == "time limit":
        return f"{minutes}, which stopped it, and {epochs}"
    if stopped_by == "early stopping":
        return f"{epochs}, and train.early_stopping_patience, now {config.get('early_stopping_patience')}"
    return epochs


def warning_lines(summary: TrainingSummary, model: str) -> list[str]:
    """The summary's warnings as lines for a log or a terminal, naming the model."""
    return [f"posecore: WARNING: model {model}: {warning['message']}" for warning in summary.warnings]


def _plain(value: Any) -> Any:
    """A value as JSON has it: numpy scalars as numbers, sequences as lists, NaN and infinities as null."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, Sequence | np.ndarray) and not isinstance(value, str):
        return [_plain(item) for item in value]
    return value
