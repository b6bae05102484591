"""Training: targets, data, the LightningModule and `train_model` (imports Lightning; inference does not).

The names below are imported on first use (PEP 562): `posecore.train.config`, which the
workflow imports to check a config before any job, imports neither torch nor Lightning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from posecore.lazy import lazy_exports

if TYPE_CHECKING:
    from posecore.train.config import ModelConfig, TrainConfig, load_config
    from posecore.train.fit import TrainResult, train_model

__all__ = ["ModelConfig", "TrainConfig", "TrainResult", "load_config", "train_model"]

_MODULES = {
    "ModelConfig": "posecore.train.config",
    "TrainConfig": "posecore.train.config",
    "load_config": "posecore.train.config",
    "TrainResult": "posecore.train.fit",
    "train_model": "posecore.train.fit",
}


__getattr__, __dir__ = lazy_exports(__name__, _MODULES, __all__)
