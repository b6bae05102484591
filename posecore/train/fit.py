"""Train a model on a training dataset and export it: `train_model`.

Writes into `out_dir`:

    checkpoints/best.ckpt   the Lightning checkpoint with the lowest val/rmse_px
    model.pt                the exported model (posecore.models.export) from that checkpoint
    metrics.csv             one row per epoch: epoch, step, train/loss, val/loss, val/rmse_px,
                            val/peak_score, lr
    config.yaml             the model and training configs used ("auto" settings as decided)
    training.json           what was decided from the labels, how the run ended and its warnings
                            (`posecore.train.summary.TrainingSummary`)
    logs/                   Lightning's raw CSV log

Settings left "auto" are decided from the training labels first (`posecore.train.auto`), and
a model that is not done when the run ends (flat maps, or a validation error still falling) is
warned of, with what to change (`posecore.train.summary.diagnose`); both go to the module's
logger (`posecore.train.fit`), which the workflow's training log and `posecore train` show.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
import yaml
from pytorch_lightning.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger
from torch.utils.data import DataLoader

from posecore.errors import InputError
from posecore.hugepages import reuse_large_buffers
from posecore.io.dataset import TrainingDataset
from posecore.models.export import ModelMeta, load_model, save_model
from posecore.models.registry import GRAPH_MAPS, hyperparameter_defaults, without_weight_sources
from posecore.ops.layout import offset_ranges
from posecore.ops.single_animal import label_extent
from posecore.train.auto import Decision, resolve_auto
from posecore.train.config import ModelConfig, TrainConfig
from posecore.train.data import PoseDataset, channel_stats
from posecore.train.module import PoseModule, load_checkpoint
from posecore.train.summary import TrainingSummary, diagnose, guess_rmse

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced.

    Attributes:
        model_path: the exported model (out_dir/model.pt).
        checkpoint_path: the best Lightning checkpoint (out_dir/checkpoints/best.ckpt).
        metrics_path: per-epoch metrics (out_dir/metrics.csv).
        best_val_rmse_px: val/rmse_px of the best checkpoint, in image pixels.
        epochs: epochs trained.
        seconds: wall-clock time of the fit.
        meta: the exported model's metadata.
        summary: what was decided from the labels, how the run ended and its warnings (also in
            out_dir/training.json).
    """

    model_path: Path
    checkpoint_path: Path
    metrics_path: Path
    best_val_rmse_px: float
    epochs: int
    seconds: float
    meta: ModelMeta
    summary: TrainingSummary


def cpu_has_bf16_matrix_units() -> bool:
    """Whether the CPU multiplies bfloat16 matrices in hardware (Intel AMX), where bf16-mixed trains faster.

    Without AMX, bf16 convolutions on the CPU are emulated and slower than float32.
    """
    is_supported = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool(is_supported and is_supported())


def resolve_devices(config: TrainConfig) -> tuple[str, str, int]:
    """Lightning's (accelerator, precision, devices) for a config: DDP on GPUs only, bf16 on GPUs and AMX CPUs."""
    n_gpus = torch.cuda.device_count()
    if config.accelerator == "gpu" and not n_gpus:
        raise ValueError("train.accelerator is 'gpu' but torch sees no CUDA device")
    accelerator = "gpu" if config.accelerator == "gpu" or (config.accelerator == "auto" and n_gpus) else "cpu"
    precision = config.precision
    if precision == "auto":
        if accelerator == "cpu":
            precision = "bf16-mixed" if cpu_has_bf16_matrix_units() else "32-true"
        else:
            precision = "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    elif accelerator == "cpu" and precision == "16-mixed":
        raise ValueError("train.precision '16-mixed' is for GPUs; use '32-true', 'bf16-mixed' or 'auto' on CPU")
    if accelerator == "cpu" and config.devices != 1:
        raise ValueError(f"train.devices is {config.devices}, but training runs on the CPU: use 1")
    if accelerator == "gpu" and config.devices > n_gpus:
        raise ValueError(f"train.devices is {config.devices}, but torch sees {n_gpus} GPU(s)")
    return accelerator, precision, config.devices


def check_training_input(
    dataset: TrainingDataset,
    model_config: ModelConfig,
    train_config: TrainConfig,
    source: str | Path = "training dataset",
    train_indices: np.ndarray | None = None,
) -> None:
    """Refuse, before anything trains, a dataset that cannot train this model.

    Raises:
        InputError: naming `source` and what is wrong: no "train" or "val" frames, a keypoint
            with no label in any training frame, posture-graph maps asked for without a
            skeleton, or an `init_from` model whose keypoints or architecture differ.
    """
    train = dataset.indices("train") if train_indices is None else np.asarray(train_indices)
    for split, frames in (("train", train), ("val", dataset.indices("val"))):
        if len(frames) == 0:
            raise InputError(source, f"no {split!r} frames; training needs both 'train' and 'val'", "key split")
    points = dataset.keypoints[train].reshape(-1, len(dataset.keypoint_names), 2)  # (N, K, 2), or (N * I, K, 2)
    labeled = np.isfinite(points).all(axis=-1).any(axis=0)  # (K,)
    unlabeled = [name for name, ok in zip(dataset.keypoint_names, labeled, strict=True) if not ok]
    if unlabeled:
        raise InputError(
            source,
            f"keypoint(s) {unlabeled} have no label in any 'train' frame: label them or remove them",
            "key keypoints",
        )
    if train_config.posture_graph and not dataset.skeleton:
        raise InputError(source, "train.posture_graph needs skeleton edges, and the dataset has none", "key skeleton")
    if train_config.posture_graph and dataset.multi_animal:
        raise InputError(source, "train.posture_graph is for one animal per frame", "key posture_graph")
    if train_config.init_from:
        meta = load_model(train_config.init_from).meta
        if tuple(meta.keypoint_names) != tuple(dataset.keypoint_names):
            raise InputError(
                source,
                f"keypoints {list(dataset.keypoint_names)} differ from those of train.init_from "
                f"{train_config.init_from} {list(meta.keypoint_names)}",
                "key keypoint_names",
            )
        if meta.architecture != model_config.architecture:
            raise InputError(
                train_config.init_from,
                f"architecture {meta.architecture!r} differs from model.architecture {model_config.architecture!r}",
                "key architecture",
            )


def train_model(
    dataset: TrainingDataset,
    model_config: ModelConfig,
    train_config: TrainConfig,
    out_dir: str | Path,
    source: str | Path = "training dataset",
    train_indices: np.ndarray | None = None,
) -> TrainResult:
    """Train on the dataset's "train" split, select on its "val" split, export the best model.

    Args:
        dataset: the training dataset (needs labeled frames in "train" and "val"). A
            multi-animal dataset (keypoints (N, I, K, 2)) trains maps with a peak per animal,
            as the top-down centroid model is (`posecore.multi.topdown`), without the
            single-animal priors; its val/rmse_px is `module.detection_errors`'.
        model_config: architecture and hyperparameters.
        train_config: optimisation, augmentation and device settings.
        out_dir: where checkpoints, the exported model and metrics go (created).
        source: the dataset's file, named in errors.
        train_indices: train on these dataset frames instead of the whole "train" split (a
            learning curve's subsets).

    Returns:
        The paths written and the best validation RMSE.

    Raises:
        InputError: the dataset cannot train this model (`check_training_input`), before any training.
    """
    out_dir = Path(out_dir)
    check_training_input(dataset, model_config, train_config, source, train_indices)
    train = dataset.indices("train") if train_indices is None else np.asarray(train_indices)
    train_config, decisions = resolve_auto(
        train_config, dataset.keypoints[train], dataset.image_sizes[train], dataset.keypoint_names, dataset.swap_pairs
    )
    for decision in decisions:
        logger.info(decision.line())
    reuse_large_buffers()  # every step's activations and gradients reuse the last step's memory
    accelerator, precision, devices = resolve_devices(train_config)
    pl.seed_everything(train_config.seed, workers=True, verbose=False)
    hyperparameters = {**hyperparameter_defaults(model_config.architecture), **model_config.hyperparameters}
    hyperparameters[GRAPH_MAPS] = len(dataset.skeleton) if train_config.posture_graph else 0
    by_time = train_config.max_epochs == "auto"  # the time budget alone sets the run's length
    mean, std = channel_stats(dataset.images[np.sort(train)])
    extent_px, ranges = 0.0, ()  # several animals per frame: the single-animal priors do not hold
    if not dataset.multi_animal:
        extent_px, ranges = label_extent(dataset.keypoints[train]), offset_ranges(dataset.keypoints[train])
    module = PoseModule(
        architecture=model_config.architecture,
        hyperparameters=hyperparameters,
        n_keypoints=len(dataset.keypoint_names),
        in_channels=int(dataset.images.shape[-1]),
        image_size=dataset.image_size,
        config=train_config,
        mean=mean,
        std=std,
        skeleton=tuple(dataset.skeleton),
        swap_pairs=tuple(dataset.swap_pairs),
        extent_px=extent_px,
        offset_ranges=ranges,
    )
    if train_config.init_from:
        module.model.load_state_dict(_init_weights(train_config.init_from, hyperparameters), strict=True)
    train_set = PoseDataset(dataset, "train", indices=train)
    val_set = PoseDataset(dataset, "val")
    loader = {"num_workers": train_config.num_workers, "pin_memory": accelerator == "gpu"}
    loader["persistent_workers"] = train_config.num_workers > 0
    drop_last = len(train_set) > train_config.batch_size  # no batch of one through BatchNorm
    train_loader = DataLoader(train_set, train_config.batch_size, shuffle=True, drop_last=drop_last, **loader)
    val_loader = DataLoader(val_set, train_config.batch_size, shuffle=False, **loader)

    checkpoint_dir = out_dir / "checkpoints"
    (checkpoint_dir / "best.ckpt").unlink(missing_ok=True)  # never mistake an old run's checkpoint for this one's
    checkpoint = ModelCheckpoint(
        dirpath=checkpoint_dir,
        filename="best",
        monitor="val/rmse_px",
        mode="min",
        save_top_k=1,
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )
    callbacks: list[pl.Callback] = [checkpoint, LearningRateMonitor(logging_interval="epoch")]
    early_stopping = None
    if train_config.early_stopping_patience > 0:
        early_stopping = EarlyStopping(monitor="val/rmse_px", mode="min", patience=train_config.early_stopping_patience)
        callbacks.append(early_stopping)
    csv_logger = CSVLogger(save_dir=out_dir, name="logs", version="")
    trainer = pl.Trainer(
        max_epochs=-1 if by_time else train_config.max_epochs,
        max_time={"minutes": train_config.max_minutes} if train_config.max_minutes else None,
        accelerator=accelerator,
        devices=devices,
        strategy="ddp" if devices > 1 else "auto",
        precision=precision,
        logger=csv_logger,
        callbacks=callbacks,
        check_val_every_n_epoch=train_config.val_every_n_epochs,
        deterministic=True if accelerator == "cpu" else "warn",
        enable_progress_bar=True,
        log_every_n_steps=max(1, min(50, len(train_loader))),
        default_root_dir=out_dir,
    )
    start = time.perf_counter()
    trainer.fit(module, train_loader, val_loader)
    seconds = time.perf_counter() - start
    if not checkpoint.best_model_path:
        raise RuntimeError(
            "no checkpoint was saved: validation never ran (train.val_every_n_epochs > max_epochs, "
            "or train.max_minutes ran out within the first epochs?)"
        )

    best = load_checkpoint(checkpoint.best_model_path)
    meta = ModelMeta(
        architecture=model_config.architecture,
        # The weights are in the file: loading it must need neither the original file nor a network.
        hyperparameters=without_weight_sources(hyperparameters),
        keypoint_names=tuple(dataset.keypoint_names),
        input_size=dataset.image_size,
        in_channels=int(dataset.images.shape[-1]),
        mean=mean,
        std=std,
        output_stride=int(best.model.output_stride),
        skeleton=tuple(dataset.skeleton),
        swap_pairs=tuple(dataset.swap_pairs),
        dataset_hash=dataset.content_hash(),
        extent_px=extent_px,
        offset_ranges=ranges,
    )
    model_path = out_dir / "model.pt"
    if trainer.is_global_zero:
        save_model(model_path, best.model, meta)
        config = {"model": asdict(model_config), "train": asdict(train_config)}
        (out_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    metrics_path = out_dir / "metrics.csv"
    epochs = int(trainer.current_epoch)
    if early_stopping is not None and early_stopping.stopped_epoch:
        stopped_by = "early stopping"
    elif by_time or epochs < train_config.max_epochs:
        stopped_by = "time limit"
    else:
        stopped_by = "max_epochs"
    guess = guess_rmse(dataset.keypoints[train], dataset.keypoints[dataset.indices("val")])
    summary = TrainingSummary(epochs, seconds / 60.0, stopped_by, accelerator, guess_val_rmse_px=guess)
    if trainer.is_global_zero:  # only rank 0 logs
        flatten_metrics(Path(csv_logger.log_dir) / "metrics.csv", metrics_path)
        summary = summarise(pd.read_csv(metrics_path), summary, train_config, decisions)
        summary.write(out_dir / "training.json")
        best = "no validation" if summary.best_epoch is None else f"best epoch {summary.best_epoch}"
        logger.info(
            f"trained {epochs} epochs in {seconds / 60:.1f} min (stopped by {stopped_by}); {best}, "
            f"validation RMSE {summary.best_val_rmse_px or math.nan:.2f} px"
        )
        for warning in summary.warnings:
            logger.warning(warning["message"])
    score = checkpoint.best_model_score
    return TrainResult(
        model_path=model_path,
        checkpoint_path=Path(checkpoint.best_model_path),
        metrics_path=metrics_path,
        best_val_rmse_px=float(score) if score is not None else math.nan,
        epochs=epochs,
        seconds=seconds,
        meta=meta,
        summary=summary,
    )


def summarise(
    curves: pd.DataFrame, summary: TrainingSummary, config: TrainConfig, decisions: tuple[Decision, ...]
) -> TrainingSummary:
    """The run's summary completed from its per-epoch curves: the best epoch, the decisions and the warnings."""
    validated = curves.dropna(subset=["val/rmse_px"]) if "val/rmse_px" in curves.columns else curves.iloc[:0]
    best = validated.loc[validated["val/rmse_px"].idxmin()] if len(validated) else None
    peak = None if best is None or "val/peak_score" not in best.index else float(best["val/peak_score"])
    summary = replace(
        summary,
        best_epoch=None if best is None else int(best["epoch"]),
        best_val_rmse_px=None if best is None else float(best["val/rmse_px"]),
        best_val_peak_score=peak,
        decisions=tuple(asdict(decision) for decision in decisions),
        config=asdict(config),
    )
    return replace(summary, warnings=diagnose(curves, summary))


def _init_weights(path: str | Path, hyperparameters: dict) -> dict[str, torch.Tensor]:
    """The weights of an exported model to start from; its hyperparameters must be these."""
    loaded = load_model(path)
    theirs = without_weight_sources(loaded.meta.hyperparameters)
    ours = without_weight_sources(hyperparameters)
    if theirs != ours:
        differ = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
        raise InputError(path, f"hyperparameters differ from model.hyperparameters: {differ}", f"key {differ[0]}")
    return loaded.model.state_dict()


def flatten_metrics(raw: Path, out: Path) -> Path:
    """Lightning's CSV log (one row per logging call) to one row per epoch, written to `out`."""
    table = pd.read_csv(raw).sort_values("step", kind="stable")
    table["epoch"] = table["epoch"].bfill()  # the learning-rate rows carry a step, not an epoch
    flat = table.groupby("epoch", as_index=False).last()  # last non-missing value of each column
    flat["epoch"] = flat["epoch"].astype(int)
    flat.to_csv(out, index=False)
    return out
