"""Training: targets, data, the LightningModule and `train_model` (imports Lightning; inference does not).

The names below are imported on first use (PEP 562): `posecore.train.config`, which the
workflow imports to check a config before any job, imports neither torch nor Lightning.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    """Import `name` from its module the first time it is asked for."""
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_MODULES[name]), name)


def __dir__() -> list[str]:
    """The module's names, the lazily imported ones included."""
    return sorted({*globals(), *__all__})
