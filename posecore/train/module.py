"""The LightningModule that trains a registered pose model on confidence-map targets.

Batches arrive as raw frames; `on_after_batch_transfer` prepares them on the accelerator
(normalisation, seeded augmentation for training batches, targets: `posecore.train.data`).
Loss: mean squared error between every stack's maps and the targets (intermediate
supervision), over labeled keypoints (and posture-graph edges) only: an unlabeled keypoint's
map is skipped, never trained towards zero. Metrics: `train/loss`, `val/loss`, `val/rmse_px`, the root mean
squared distance in image pixels between the final stack's decoded keypoints
(`posecore.ops.decode.decode_peaks` with the training labels' priors, and
`posecore.geometry.map_to_image`, as at inference) and the labeled keypoints, and
`val/peak_score`, the mean height of those keypoints' peaks (near 0: flat maps, nothing learned).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from posecore.geometry import map_to_image
from posecore.models.registry import build_model
from posecore.ops.decode import decode_peaks
from posecore.ops.multipeak import find_peaks_multi
from posecore.train.config import AUGMENTATION_KEYS, TrainConfig
from posecore.train.data import prepare_batch

# How far (as a fraction of the run) a run with a time limit may fall behind the pace that
# finishes its epochs within the limit before its schedule follows the clock: start-up, a slow
# first step or a busy machine then leave its learning rates, and so its result, unchanged.
CLOCK_LAG = 0.05


def masked_mse(
    outputs: list[torch.Tensor], targets: torch.Tensor, mask: torch.Tensor, peak_weight: float = 0.0
) -> torch.Tensor:
    """Sum over stacks of the (weighted) mean squared error over labeled keypoints' maps.

    Args:
        outputs: one (B, K, h, w) tensor per stack.
        targets: (B, K, h, w) target maps.
        mask: bool (B, K), True where the keypoint is labeled; other maps do not count,
            whatever the outputs or targets hold there.
        peak_weight: each cell's squared error counts 1 + peak_weight x its target (0: plain
            MSE), so that the few cells under a peak are not drowned by the background.

    Returns:
        A scalar; 0 (still attached to the graph) when nothing is labeled.
    """
    weight = mask.to(targets.dtype)[..., None, None]  # (B, K, 1, 1)
    cells = weight.sum() * targets.shape[-2] * targets.shape[-1]
    safe_targets = torch.where(weight > 0, targets.float(), 0.0)  # masked targets may hold anything, even NaN
    cell_weight = weight * (1.0 + peak_weight * safe_targets) if peak_weight else weight  # (B, K, h, w) or (B, K, 1, 1)
    total = targets.new_zeros((), dtype=torch.float32)
    for maps in outputs:
        squared = cell_weight * (maps.float() - safe_targets) ** 2  # (B, K, h, w), 0 and no gradient where masked
        total = total + squared.sum() / cells.clamp_min(1.0)
    return total


def keypoint_errors(
    maps: torch.Tensor,
    keypoints: torch.Tensor,
    stride: int,
    extent_px: float = 0.0,
    offset_ranges: tuple[tuple[int, int, float, float, float, float], ...] = (),
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Distances in image pixels between the maps' decoded keypoints and the labeled ones.

    Args:
        maps: (B, K, h, w) final-stack maps, cropped to the cells that cover the image.
        keypoints: (B, K, 2) labeled (x, y) in image pixels, NaN where unlabeled.
        stride: image pixels per map cell.
        extent_px: the animal's largest extent in the training labels (`decode_peaks`).
        offset_ranges: the training labels' offset ranges (`decode_peaks`).

    Returns:
        errors (B, K) in pixels, a bool mask (B, K) of labeled keypoints, and the decoded
        peaks' scores (B, K): their maps' values there.
    """
    peaks = decode_peaks(maps, stride, extent_px, offset_ranges)  # (B, K, 3) in map cells
    predicted = map_to_image(peaks[..., :2], stride)  # (B, K, 2) image pixels
    labeled = torch.isfinite(keypoints).all(dim=-1)  # (B, K)
    errors = torch.linalg.vector_norm(predicted - keypoints, dim=-1)  # (B, K)
    return errors, labeled, peaks[..., 2]


MISS_SIGMAS = 4.0
"""With several animals per frame, a labeled point with no peak within this many target sigmas is missed."""


def detection_errors(
    maps: torch.Tensor, keypoints: torch.Tensor, stride: int, sigma_px: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Errors in image pixels of maps that hold several animals' peaks, for val/rmse_px.

    Each map's local maxima above 0.5 (`find_peaks_multi`) are matched to the labeled points
    of that keypoint, nearest pairs first, within `MISS_SIGMAS` x `sigma_px`; a labeled point
    left without a peak, and a peak left without a labeled point, each count that distance.

    Args:
        maps: (B, K, h, w) final-stack maps, cropped to the cells that cover the image.
        keypoints: (B, I, K, 2) labeled (x, y) in image pixels, NaN where none.
        stride: image pixels per map cell.
        sigma_px: the targets' Gaussian standard deviation in image pixels.

    Returns:
        errors (B, P) in pixels and a bool mask (B, P) of the ones that count, P = 2 x I x K.
    """
    b, i, k = keypoints.shape[:3]
    peaks = find_peaks_multi(maps.float(), max_peaks=i + 1, threshold=0.5)  # (B, K, I + 1, 3) map cells
    found = map_to_image(peaks[..., :2], stride)  # (B, K, I + 1, 2) image pixels
    reach = MISS_SIGMAS * sigma_px
    errors = torch.full((b, 2 * i * k), reach, dtype=torch.float32, device=maps.device)
    counted = torch.zeros((b, 2 * i * k), dtype=torch.bool, device=maps.device)
    labels = keypoints.permute(0, 2, 1, 3).cpu().numpy()  # (B, K, I, 2)
    candidates = found.cpu().numpy()
    for frame in range(b):
        slot = 0
        for j in range(k):
            truth = labels[frame, j][np.isfinite(labels[frame, j]).all(axis=-1)]  # (G, 2)
            guess = candidates[frame, j][np.isfinite(candidates[frame, j]).all(axis=-1)]  # (P, 2)
            distance = np.linalg.norm(truth[:, None] - guess[None], axis=-1)  # (G, P)
            pairs = []
            while distance.size and np.isfinite(distance).any() and distance.min() <= reach:
                g, p = np.unravel_index(np.argmin(distance), distance.shape)
                pairs.append(float(distance[g, p]))
                distance[g, :], distance[:, p] = np.inf, np.inf
            n = len(truth) + len(guess) - len(pairs)  # matched pairs, then the unmatched of either side
            errors[frame, slot : slot + len(pairs)] = torch.tensor(pairs, dtype=torch.float32)
            counted[frame, slot : slot + min(n, 2 * i)] = True
            slot += 2 * i
    return errors, counted


class PoseModule(pl.LightningModule):
    """A registered model with its batch preparation, loss, metrics and optimiser.

    The model and the training labels' facts are plain arguments; how to train is one decided
    `TrainConfig` (`config`), whose augmentation is built once here. Both are saved as
    hyperparameters (the config as a plain dict), and `load_checkpoint` reads a checkpoint back
    (also one written before the config was handed whole).

    Args:
        architecture: registry name of the model.
        hyperparameters: its constructor arguments besides n_keypoints and in_channels, with
            `n_graph_maps` (E) when it also outputs posture-graph maps.
        n_keypoints: K.
        in_channels: C.
        image_size: (H, W) of the unpadded images, to crop maps as the predictor does.
        config: how to train, with nothing but max_epochs left "auto" (`TrainConfig.decided`);
            max_epochs "auto" trains for max_minutes, the cosine schedule following the clock
            (`_progress`). Used here: sigma_px, seed (the augmentation's generator, seed + rank),
            learning_rate, lr_schedule, max_epochs, max_minutes, crop_size, crop_background,
            crop_until, peak_weight (`masked_mse`) and the augmentation keys.
        mean: per-channel mean (C) in uint8 units, to normalise as the exported model will.
        std: per-channel standard deviation (C) in uint8 units.
        skeleton: the E posture-graph edges when E > 0 (their maps follow the K keypoint maps).
        swap_pairs: left/right keypoint index pairs exchanged by a flip.
        extent_px: the animal's largest extent in the training labels (0: unknown), and
        offset_ranges: the training labels' offset ranges (empty: unknown), for decoding the
            validation maps as the exported model will be (`posecore.ops.decode.decode_peaks`).
    """

    def __init__(
        self,
        architecture: str,
        hyperparameters: dict[str, Any],
        n_keypoints: int,
        in_channels: int,
        image_size: tuple[int, int],
        config: TrainConfig,
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
        skeleton: tuple[tuple[int, int], ...] = (),
        swap_pairs: tuple[tuple[int, int], ...] = (),
        extent_px: float = 0.0,
        offset_ranges: tuple[tuple[int, int, float, float, float, float], ...] = (),
    ) -> None:
        super().__init__()
        if not config.decided:
            raise ValueError("train.flip, crop_size and crop_until must be decided first (posecore.train.auto)")
        self.save_hyperparameters(ignore="config")
        # The config as plain values: the checkpoint and hparams.yaml name no posecore class.
        self.save_hyperparameters({"config": asdict(config)})
        self.config = config
        self.augmentation = config.augmentation(swap_pairs)
        self.model = build_model(architecture, n_keypoints, in_channels, **hyperparameters)
        self.n_keypoints = n_keypoints
        self.stride = int(self.model.output_stride)
        self.map_size = (math.ceil(image_size[0] / self.stride), math.ceil(image_size[1] / self.stride))
        self.mean = tuple(mean) if mean is not None else (0.0,) * in_channels
        self.std = tuple(std) if std is not None else (1.0,) * in_channels
        n_graph = int(hyperparameters.get("n_graph_maps", 0))
        if n_graph != len(skeleton) and n_graph:
            raise ValueError(f"n_graph_maps is {n_graph} but the skeleton has {len(skeleton)} edges")
        self.skeleton = tuple(tuple(edge) for edge in skeleton) if n_graph else None
        self._generator: torch.Generator | None = None
        self._sums = torch.zeros(3, dtype=torch.float64)  # squared pixel error, labeled keypoints, peak scores
        self._schedule_start: float | None = None  # wall clock at the start of training (with max_minutes)

    def setup(self, stage: str) -> None:
        """On the CPU, hold the weights channels-last, as oneDNN's convolutions run fastest."""
        if self.trainer.strategy.root_device.type == "cpu":
            self.model.to(memory_format=torch.channels_last)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Normalised images (B, C, H, W) -> one (B, K + E, H / s, W / s) map tensor per supervised output."""
        return self.model(images)

    def generator(self, device: torch.device) -> torch.Generator:
        """The augmentation's random generator on `device`, seeded once per process (seed + global rank)."""
        if self._generator is None or self._generator.device != device:
            rank = self.trainer.global_rank if self._trainer is not None else 0
            self._generator = torch.Generator(device=device)
            self._generator.manual_seed(self.config.seed + rank)
        return self._generator

    def on_after_batch_transfer(self, batch: dict[str, torch.Tensor], dataloader_idx: int) -> dict[str, torch.Tensor]:
        """Raw frames on the device -> normalised, augmented (training only), padded images with targets."""
        if "maps" in batch:  # already prepared
            return batch
        training = self._trainer is not None and self.trainer.training
        augmentation = self.augmentation if training and self.augmentation.active else None
        crop_size = int(self.config.crop_size) if training else 0
        if crop_size and self._progress(self.global_step) >= float(self.config.crop_until):
            crop_size = 0  # the rest of the run sees whole frames
        channels_last = batch["image"].device.type == "cpu"  # as `setup` holds the weights
        return prepare_batch(
            batch,
            self.mean,
            self.std,
            int(self.model.input_multiple),
            self.stride,
            float(self.config.sigma_px),
            self.skeleton,
            augmentation,
            self.generator(batch["image"].device) if augmentation is not None or crop_size else None,
            crop_size,
            float(self.config.crop_background),
            torch.channels_last if channels_last else torch.contiguous_format,
        )

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Masked MSE over all supervised outputs, logged as train/loss."""
        loss = masked_mse(self.model(batch["image"]), batch["maps"], batch["mask"], self.config.peak_weight)
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(batch["image"]))
        return loss

    def on_validation_epoch_start(self) -> None:
        """Reset the RMSE and peak score accumulators."""
        self._sums = torch.zeros(3, dtype=torch.float64, device=self.device)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Log val/loss and accumulate squared pixel errors of labeled keypoints.

        On the CPU in float32 whatever the training precision, as `posecore.predict` runs there,
        so that the maps are decoded as the exported model's will be, to the same subpixel.
        """
        with torch.autocast("cpu", enabled=False):
            outputs = self.model(batch["image"])
        loss = masked_mse(outputs, batch["maps"], batch["mask"], self.config.peak_weight)
        self.log("val/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(batch["image"]))
        maps = outputs[-1][:, : self.n_keypoints, : self.map_size[0], : self.map_size[1]]  # (B, K, h, w) on the image
        if batch["keypoints"].ndim == 4:  # several animals per frame: no one peak per keypoint to score
            errors, labeled = detection_errors(maps, batch["keypoints"], self.stride, float(self.config.sigma_px))
            scores = torch.full_like(errors, math.nan)
        else:
            errors, labeled, scores = keypoint_errors(
                maps, batch["keypoints"], self.stride, float(self.hparams.extent_px), self.hparams.offset_ranges
            )
        batch_sums = torch.stack(
            [(errors[labeled].double() ** 2).sum(), labeled.sum().double(), scores[labeled].double().sum()]
        )
        self._sums = self._sums.to(batch_sums.device) + batch_sums

    def on_validation_epoch_end(self) -> None:
        """Log val/rmse_px and val/peak_score over every labeled keypoint of the validation split (all processes)."""
        sums = self._sums
        if self._trainer is not None and self.trainer.world_size > 1:
            sums = self.trainer.strategy.reduce(sums, reduce_op="sum")
        squared, count, scores = float(sums[0]), float(sums[1]), float(sums[2])
        self.log("val/rmse_px", math.sqrt(squared / count) if count else math.nan, prog_bar=True)
        self.log("val/peak_score", scores / count if count else math.nan)

    def on_train_start(self) -> None:
        """Start the time limit's clock, when Lightning's own timer starts (after setup and the sanity check)."""
        self._schedule_start = time.monotonic()

    def _progress(self, step: int) -> float:
        """How far the run is after `step` steps, from 0 to 1.

        The end is max_epochs' last step. With max_minutes, a run that falls more than
        CLOCK_LAG behind the pace that finishes max_epochs within the limit follows the clock
        instead (timed from the start of training, as Lightning's timer is), so that it still
        ends at a small learning rate (the cosine's factor at 1 - CLOCK_LAG: 0.6%). A run that
        keeps the pace follows its steps alone, and so repeats exactly with its seed. With
        max_epochs "auto", the run is its time limit: progress is the share of it elapsed.
        """
        max_minutes = float(self.config.max_minutes)
        elapsed = None
        if max_minutes and self._schedule_start is not None:
            elapsed = (time.monotonic() - self._schedule_start) / (60.0 * max_minutes)
        if self.config.max_epochs == "auto":  # the time budget alone
            return min(elapsed or 0.0, 1.0)
        if self._trainer is not None:
            total_steps = max(1, int(self.trainer.estimated_stepping_batches))
        else:  # outside a fit: count one step per epoch
            total_steps = int(self.config.max_epochs)
        progress = step / total_steps
        if elapsed is not None:
            progress = max(progress, elapsed - CLOCK_LAG)
        return min(progress, 1.0)

    def _cosine_factor(self, step: int) -> float:
        """The cosine schedule's learning-rate factor after `step` steps: 1 at the start, 0 at the end (`_progress`)."""
        return 0.5 * (1.0 + math.cos(math.pi * self._progress(step)))

    def configure_optimizers(self) -> Any:
        """Adam with the configured learning-rate schedule."""
        optimizer = torch.optim.Adam(self.model.parameters(), lr=self.config.learning_rate)
        schedule = self.config.lr_schedule
        if schedule == "cosine":
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self._cosine_factor)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
        if schedule == "plateau":
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.2, patience=10)
            config = {"scheduler": scheduler, "monitor": "val/loss", "interval": "epoch", "strict": False}
            return {"optimizer": optimizer, "lr_scheduler": config}
        if schedule == "none":
            return optimizer
        raise ValueError(f"unknown lr_schedule {schedule!r}; known: cosine, plateau, none")


FORMAT_1_TRAIN_KEYS = (
    "sigma_px",
    "seed",
    "learning_rate",
    "lr_schedule",
    "max_epochs",
    "max_minutes",
    "crop_size",
    "crop_background",
    "crop_until",
    "peak_weight",
)
"""Training settings that checkpoints written before `PoseModule` took a `TrainConfig` hold one by one."""


def load_checkpoint(path: str | Path) -> PoseModule:
    """A `PoseModule` from a Lightning checkpoint, on the CPU, in evaluation mode.

    Checkpoints written before `PoseModule` took a `TrainConfig` (their training settings as
    separate hyperparameters, the augmentation as a dict and max_epochs 0 for the time budget)
    load too: their settings become the config they trained with.
    """
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    hyperparameters = dict(checkpoint["hyper_parameters"])
    if "config" not in hyperparameters:  # format 1
        settings = {key: hyperparameters.pop(key) for key in FORMAT_1_TRAIN_KEYS if key in hyperparameters}
        augmentation = hyperparameters.pop("augmentation", None) or {}
        settings.update({key: value for key, value in augmentation.items() if key in AUGMENTATION_KEYS})
        if settings.get("max_epochs") == 0:
            settings["max_epochs"] = "auto"
        hyperparameters["config"] = TrainConfig(**settings)
    else:
        hyperparameters["config"] = TrainConfig(**hyperparameters["config"])
    module = PoseModule(**hyperparameters)
    module.load_state_dict(checkpoint["state_dict"])
    return module.eval()
