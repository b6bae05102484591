"""Pose models, their registry and the exported-model file format."""

from posecore.models.export import LoadedModel, ModelMeta, load_model, save_model
from posecore.models.registry import MODELS, build_model

__all__ = ["MODELS", "LoadedModel", "ModelMeta", "build_model", "load_model", "save_model"]
