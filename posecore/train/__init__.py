"""Training: targets, data, the LightningModule and `train_model` (imports Lightning; inference does not)."""

from posecore.train.config import ModelConfig, TrainConfig, load_config
from posecore.train.fit import TrainResult, train_model

__all__ = ["ModelConfig", "TrainConfig", "TrainResult", "load_config", "train_model"]
