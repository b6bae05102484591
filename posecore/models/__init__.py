"""Pose models, their registry and the exported-model file format.

The names below are imported on first use (PEP 562), so that `posecore.models.registry`
(which checks hyperparameters without torch) can be imported without importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from posecore.lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, _MODULES, __all__)
