"""Pose models, their registry and the exported-model file format.

The names below are imported on first use (PEP 562), so that `posecore.models.registry`
(which checks hyperparameters without torch) can be imported without importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from posecore.models.export import LoadedModel, ModelMeta, load_model, save_model
    from posecore.models.registry import MODELS, build_model

__all__ = ["MODELS", "LoadedModel", "ModelMeta", "build_model", "load_model", "save_model"]

_MODULES = {
    "LoadedModel": "posecore.models.export",
    "ModelMeta": "posecore.models.export",
    "load_model": "posecore.models.export",
    "save_model": "posecore.models.export",
    "MODELS": "posecore.models.registry",
    "build_model": "posecore.models.registry",
}


def __getattr__(name: str) -> Any:
    """Import `name` from its module the first time it is asked for."""
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_MODULES[name]), name)


def __dir__() -> list[str]:
    """The module's names, the lazily imported ones included."""
    return sorted({*globals(), *__all__})
