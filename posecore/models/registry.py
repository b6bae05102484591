"""The model registry: one explicit table from architecture name to model class.

To add a model:
1. write its module in `posecore/models/` with a class whose constructor takes
   `n_keypoints: int, in_channels: int` and plain typed hyperparameters with defaults (int,
   float, bool, str), whose `forward` maps normalised images (B, C, H, W) to a list of
   confidence maps (B, K, H / s, W / s) (one per supervised output, the last being the final
   one), and which has the attributes `output_stride` (s) and `input_multiple`;
2. list it in `MODELS` below;
3. add a test in `tests/models/` that checks the output shapes at two input sizes, and make
   sure `tests/models/test_export.py` round-trips it (it runs over every entry of `MODELS`).

Models are found only through this table, never by import side effects.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Mapping
from typing import Any

from torch import nn

from posecore.models.densenet import StackedDenseNet

MODELS: dict[str, type[nn.Module]] = {"stacked_densenet": StackedDenseNet}

_FIXED = ("n_keypoints", "in_channels")


def hyperparameter_types(name: str) -> dict[str, type]:
    """The hyperparameters a model takes (all constructor arguments but n_keypoints, in_channels)."""
    cls = _model_class(name)
    hints = typing.get_type_hints(cls.__init__)
    parameters = inspect.signature(cls.__init__).parameters
    return {key: hints[key] for key in parameters if key not in ("self", *_FIXED)}


def hyperparameter_defaults(name: str) -> dict[str, Any]:
    """The default value of every hyperparameter of a model."""
    parameters = inspect.signature(_model_class(name).__init__).parameters
    return {key: parameters[key].default for key in hyperparameter_types(name)}


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


def build_model(name: str, n_keypoints: int, in_channels: int, **hyperparameters: Any) -> nn.Module:
    """Build a registered model after checking its hyperparameters.

    Args:
        name: a key of `MODELS`.
        n_keypoints: K, the number of confidence maps.
        in_channels: C, image channels.
        **hyperparameters: the model's other constructor arguments; unknown or wrongly typed
            ones are an error naming them.

    Returns:
        The model, in training mode, with freshly initialised weights.
    """
    check_hyperparameters(name, hyperparameters)
    return _model_class(name)(n_keypoints=n_keypoints, in_channels=in_channels, **hyperparameters)


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
