"""Train a model on a training dataset and export it: `train_model`.

Writes into `out_dir`:

    checkpoints/best.ckpt   the Lightning checkpoint with the lowest val/rmse_px
    model.pt                the exported model (posecore.models.export) from that checkpoint
    metrics.csv             one row per epoch: epoch, step, train/loss, val/loss, val/rmse_px, lr
    config.yaml             the model and training configs used
    logs/                   Lightning's raw CSV log
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import pytorch_lightning as pl
import torch
import yaml
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger
from torch.utils.data import DataLoader

from posecore.io.dataset import TrainingDataset
from posecore.models.export import ModelMeta, save_model
from posecore.models.registry import hyperparameter_defaults
from posecore.train.config import ModelConfig, TrainConfig
from posecore.train.data import Augmentation, PoseDataset, channel_stats
from posecore.train.module import PoseModule


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
    """

    model_path: Path
    checkpoint_path: Path
    metrics_path: Path
    best_val_rmse_px: float
    epochs: int
    seconds: float
    meta: ModelMeta


def resolve_devices(config: TrainConfig) -> tuple[str, str]:
    """Lightning's (accelerator, precision) for a config: mixed precision on GPUs only."""
    has_gpu = torch.cuda.is_available()
    if config.accelerator == "gpu" and not has_gpu:
        raise ValueError("train.accelerator is 'gpu' but torch sees no CUDA device")
    accelerator = "gpu" if config.accelerator == "gpu" or (config.accelerator == "auto" and has_gpu) else "cpu"
    precision = config.precision
    if precision == "auto":
        if accelerator == "cpu":
            precision = "32-true"
        else:
            precision = "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    elif accelerator == "cpu" and precision != "32-true":
        raise ValueError(f"train.precision {precision!r} is for GPUs; use '32-true' or 'auto' on CPU")
    return accelerator, precision


def train_model(
    dataset: TrainingDataset, model_config: ModelConfig, train_config: TrainConfig, out_dir: str | Path
) -> TrainResult:
    """Train on the dataset's "train" split, select on its "val" split, export the best model.

    Args:
        dataset: the training dataset (needs labeled frames in "train" and "val").
        model_config: architecture and hyperparameters.
        train_config: optimisation, augmentation and device settings.
        out_dir: where checkpoints, the exported model and metrics go (created).

    Returns:
        The paths written and the best validation RMSE.
    """
    out_dir = Path(out_dir)
    for split in ("train", "val"):
        if len(dataset.indices(split)) == 0:
            raise ValueError(f"the dataset has no {split!r} frames; training needs both 'train' and 'val'")
    accelerator, precision = resolve_devices(train_config)
    pl.seed_everything(train_config.seed, workers=True, verbose=False)
    hyperparameters = {**hyperparameter_defaults(model_config.architecture), **model_config.hyperparameters}
    module = PoseModule(
        architecture=model_config.architecture,
        hyperparameters=hyperparameters,
        n_keypoints=len(dataset.keypoint_names),
        in_channels=int(dataset.images.shape[-1]),
        image_size=dataset.image_size,
        learning_rate=train_config.learning_rate,
        lr_schedule=train_config.lr_schedule,
        max_epochs=train_config.max_epochs,
    )
    mean, std = channel_stats(dataset.images[dataset.indices("train")])
    common = {
        "dataset": dataset,
        "mean": mean,
        "std": std,
        "input_multiple": int(module.model.input_multiple),
        "output_stride": int(module.model.output_stride),
        "sigma_px": train_config.sigma_px,
    }
    augmentation = Augmentation(
        flip=train_config.flip,
        translation_px=train_config.translation_px,
        rotation_deg=train_config.rotation_deg,
        swap_pairs=dataset.swap_pairs,
    )
    train_set = PoseDataset(split="train", augmentation=augmentation, **common)
    val_set = PoseDataset(split="val", **common)
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
    logger = CSVLogger(save_dir=out_dir, name="logs", version="")
    trainer = pl.Trainer(
        max_epochs=train_config.max_epochs,
        accelerator=accelerator,
        devices=1,
        precision=precision,
        logger=logger,
        callbacks=[checkpoint, LearningRateMonitor(logging_interval="epoch")],
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
        raise RuntimeError("no checkpoint was saved: validation never ran (val_every_n_epochs > max_epochs?)")

    best = PoseModule.load_from_checkpoint(checkpoint.best_model_path, map_location="cpu", weights_only=False)
    meta = ModelMeta(
        architecture=model_config.architecture,
        hyperparameters=hyperparameters,
        keypoint_names=tuple(dataset.keypoint_names),
        input_size=dataset.image_size,
        in_channels=int(dataset.images.shape[-1]),
        mean=mean,
        std=std,
        output_stride=int(best.model.output_stride),
        skeleton=tuple(dataset.skeleton),
        swap_pairs=tuple(dataset.swap_pairs),
        dataset_hash=dataset.content_hash(),
    )
    model_path = out_dir / "model.pt"
    save_model(model_path, best.model, meta)
    metrics_path = flatten_metrics(Path(logger.log_dir) / "metrics.csv", out_dir / "metrics.csv")
    config = {"model": asdict(model_config), "train": asdict(train_config)}
    (out_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    score = checkpoint.best_model_score
    return TrainResult(
        model_path=model_path,
        checkpoint_path=Path(checkpoint.best_model_path),
        metrics_path=metrics_path,
        best_val_rmse_px=float(score) if score is not None else math.nan,
        epochs=int(trainer.current_epoch),
        seconds=seconds,
        meta=meta,
    )


def flatten_metrics(raw: Path, out: Path) -> Path:
    """Lightning's CSV log (one row per logging call) to one row per epoch, written to `out`."""
    table = pd.read_csv(raw).sort_values("step", kind="stable")
    table["epoch"] = table["epoch"].bfill()  # the learning-rate rows carry a step, not an epoch
    flat = table.groupby("epoch", as_index=False).last()  # last non-missing value of each column
    flat["epoch"] = flat["epoch"].astype(int)
    flat.to_csv(out, index=False)
    return out
