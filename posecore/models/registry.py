"""The model registry: one explicit table from architecture name to model class.

To add a model:
1. write its module in `posecore/models/` with a class whose constructor takes
   `n_keypoints: int, in_channels: int` and plain typed hyperparameters with defaults (int,
   float, bool, str), whose `forward` maps normalised images (B, C, H, W) to a list of
   confidence maps (B, K, H / s, W / s) (one per supervised output, the last being the final
   one), and which has the attributes `output_stride` (s) and `input_multiple`;
2. list it in `MODELS` below;
3. add a test in `tests/models/` that checks the output shapes at two input sizes, and add it
   to `SMALL` in `tests/models/test_export.py`, which round-trips every entry of `MODELS`.

Every model also takes the registry's own hyperparameter `n_graph_maps` (default 0): the
number of posture-graph maps (DeepPoseKit) it outputs after its K keypoint maps. The registry
builds the class with `n_keypoints = K + n_graph_maps` output channels, so no model needs to
know about graphs; consumers read the first K channels as keypoints.

Models are found only through this table, never by import side effects.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Mapping
from typing import Any

from torch import nn

from posecore.models.densenet import StackedDenseNet
from posecore.models.hourglass import StackedHourglass
from posecore.models.leap import LEAPNet
from posecore.models.resnet import ResNetDeconv

MODELS: dict[str, type[nn.Module]] = {
    "stacked_densenet": StackedDenseNet,
    "stacked_hourglass": StackedHourglass,
    "leap": LEAPNet,
    "resnet_deconv": ResNetDeconv,
}

GRAPH_MAPS = "n_graph_maps"
_FIXED = ("n_keypoints", "in_channels")


def hyperparameter_types(name: str) -> dict[str, type]:
    """The hyperparameters a model takes (constructor arguments but n_keypoints, in_channels; plus n_graph_maps)."""
    cls = _model_class(name)
    hints = typing.get_type_hints(cls.__init__)
    parameters = inspect.signature(cls.__init__).parameters
    types = {key: hints[key] for key in parameters if key not in ("self", *_FIXED)}
    return {**types, GRAPH_MAPS: int}


def hyperparameter_defaults(name: str) -> dict[str, Any]:
    """The default value of every hyperparameter of a model."""
    parameters = inspect.signature(_model_class(name).__init__).parameters
    return {key: parameters[key].default if key in parameters else 0 for key in hyperparameter_types(name)}


def check_hyperparameters(name: str, hyperparameters: Mapping[str, Any]) -> None:
    """Raise ValueError naming the first hyperparameter that the model does not take or whose type is wrong."""
    types = hyperparameter_types(name)
    for key, value in hyperparameters.items():
        if key not in types:
            raise ValueError(f"model {name!r} has no hyperparameter {key!r}; it takes: {', '.join(types)}")
        if not _is_instance(value, types[key]):
            raise ValueError(
                f"hyperparameter {key!r} of model {name!r} must be {types[key].__name__}, "
                f"got {value!r} ({type(value).__name__})"
            )
    if hyperparameters.get(GRAPH_MAPS, 0) < 0:
        raise ValueError(f"hyperparameter {GRAPH_MAPS!r} must be >= 0, got {hyperparameters[GRAPH_MAPS]}")


def build_model(name: str, n_keypoints: int, in_channels: int, **hyperparameters: Any) -> nn.Module:
    """Build a registered model after checking its hyperparameters.

    Args:
        name: a key of `MODELS`.
        n_keypoints: K, the number of keypoint confidence maps.
        in_channels: C, image channels.
        **hyperparameters: the model's other constructor arguments, and `n_graph_maps` (E, default
            0); unknown or wrongly typed ones are an error naming them.

    Returns:
        The model, in training mode, with freshly initialised weights (or those its own
        hyperparameters name, such as `weights_path`); its outputs have K + E channels, the K
        keypoint maps first.
    """
    check_hyperparameters(name, hyperparameters)
    model_arguments = {key: value for key, value in hyperparameters.items() if key != GRAPH_MAPS}
    n_outputs = n_keypoints + int(hyperparameters.get(GRAPH_MAPS, 0))
    return _model_class(name)(n_keypoints=n_outputs, in_channels=in_channels, **model_arguments)


def _model_class(name: str) -> type[nn.Module]:
    if name not in MODELS:
        raise ValueError(f"unknown model architecture {name!r}; known: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def _is_instance(value: Any, expected: type) -> bool:
    """Type check for plain hyperparameter types: bool is not an int, an int is a float."""
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)
