"""The LightningModule that trains a registered pose model on confidence-map targets.

Loss: mean squared error between every stack's maps and the targets (intermediate
supervision), over labeled keypoints only: an unlabeled keypoint's map is skipped, never
trained towards zero. Metrics: `train/loss`, `val/loss` and `val/rmse_px`, the root mean
squared distance in image pixels between the final stack's peaks (`posecore.ops.find_peaks`,
`posecore.geometry.map_to_image`, as at inference) and the labeled keypoints.
"""

from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl
import torch

from posecore.geometry import map_to_image
from posecore.models.registry import build_model
from posecore.ops import find_peaks


def masked_mse(outputs: list[torch.Tensor], targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum over stacks of the mean squared error over labeled keypoints' maps.

    Args:
        outputs: one (B, K, h, w) tensor per stack.
        targets: (B, K, h, w) target maps.
        mask: bool (B, K), True where the keypoint is labeled; other maps do not count,
            whatever the outputs or targets hold there.

    Returns:
        A scalar; 0 (still attached to the graph) when nothing is labeled.
    """
    weight = mask.to(targets.dtype)[..., None, None]  # (B, K, 1, 1)
    cells = weight.sum() * targets.shape[-2] * targets.shape[-1]
    safe_targets = torch.where(weight > 0, targets.float(), 0.0)  # masked targets may hold anything, even NaN
    total = targets.new_zeros((), dtype=torch.float32)
    for maps in outputs:
        squared = ((maps.float() - safe_targets) * weight) ** 2  # (B, K, h, w), 0 and no gradient where masked
        total = total + squared.sum() / cells.clamp_min(1.0)
    return total


def keypoint_errors(maps: torch.Tensor, keypoints: torch.Tensor, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Distances in image pixels between the maps' peaks and the keypoints.

    Args:
        maps: (B, K, h, w) final-stack maps, cropped to the cells that cover the image.
        keypoints: (B, K, 2) labeled (x, y) in image pixels, NaN where unlabeled.
        stride: image pixels per map cell.

    Returns:
        errors (B, K) in pixels and a bool mask (B, K) of labeled keypoints.
    """
    peaks = find_peaks(maps.float())  # (B, K, 3) in map cells
    predicted = map_to_image(peaks[..., :2], stride)  # (B, K, 2) image pixels
    labeled = torch.isfinite(keypoints).all(dim=-1)  # (B, K)
    errors = torch.linalg.vector_norm(predicted - keypoints, dim=-1)  # (B, K)
    return errors, labeled


class PoseModule(pl.LightningModule):
    """A registered model with its loss, metrics and optimiser.

    Args:
        architecture: registry name of the model.
        hyperparameters: its constructor arguments besides n_keypoints and in_channels.
        n_keypoints: K.
        in_channels: C.
        image_size: (H, W) of the unpadded images, to crop maps as the predictor does.
        learning_rate: Adam's initial learning rate.
        lr_schedule: "cosine", "plateau" or "none".
        max_epochs: length of the cosine schedule.
    """

    def __init__(
        self,
        architecture: str,
        hyperparameters: dict[str, Any],
        n_keypoints: int,
        in_channels: int,
        image_size: tuple[int, int],
        learning_rate: float = 1e-3,
        lr_schedule: str = "cosine",
        max_epochs: int = 100,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = build_model(architecture, n_keypoints, in_channels, **hyperparameters)
        self.stride = int(self.model.output_stride)
        self.map_size = (math.ceil(image_size[0] / self.stride), math.ceil(image_size[1] / self.stride))
        self._squared_error = 0.0
        self._labeled = 0

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Normalised images (B, C, H, W) -> one (B, K, H / s, W / s) map tensor per stack."""
        return self.model(images)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Masked MSE over all stacks, logged as train/loss."""
        loss = masked_mse(self.model(batch["image"]), batch["maps"], batch["mask"])
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(batch["image"]))
        return loss

    def on_validation_epoch_start(self) -> None:
        """Reset the RMSE accumulators."""
        self._squared_error = 0.0
        self._labeled = 0

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Log val/loss and accumulate squared pixel errors of labeled keypoints."""
        outputs = self.model(batch["image"])
        loss = masked_mse(outputs, batch["maps"], batch["mask"])
        self.log("val/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(batch["image"]))
        maps = outputs[-1][..., : self.map_size[0], : self.map_size[1]]  # (B, K, h, w) over the image
        errors, labeled = keypoint_errors(maps, batch["keypoints"], self.stride)
        self._squared_error += float((errors[labeled] ** 2).sum())
        self._labeled += int(labeled.sum())

    def on_validation_epoch_end(self) -> None:
        """Log val/rmse_px over every labeled keypoint of the validation split."""
        rmse = math.sqrt(self._squared_error / self._labeled) if self._labeled else math.nan
        self.log("val/rmse_px", rmse, prog_bar=True)

    def configure_optimizers(self) -> Any:
        """Adam with the configured learning-rate schedule."""
        optimizer = torch.optim.Adam(self.model.parameters(), lr=self.hparams.learning_rate)
        schedule = self.hparams.lr_schedule
        if schedule == "cosine":
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.hparams.max_epochs)
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
        if schedule == "plateau":
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.2, patience=10)
            config = {"scheduler": scheduler, "monitor": "val/loss", "interval": "epoch", "strict": False}
            return {"optimizer": optimizer, "lr_scheduler": config}
        if schedule == "none":
            return optimizer
        raise ValueError(f"unknown lr_schedule {schedule!r}; known: cosine, plateau, none")
