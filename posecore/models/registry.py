"""The model registry: one explicit table from architecture name to model class.

To add a model:
1. write its module in `posecore/models/` with a class whose constructor takes
   `n_keypoints: int, in_channels: int` and plain typed hyperparameters with defaults (int,
   float, bool, str), whose `forward` maps normalised images (B, C, H, W) to a list of
   confidence maps (B, K, H / s, W / s) (one per supervised output, the last being the final
   one), and which has the attributes `output_stride` (s) and `input_multiple`; a model named
   after a published one (DeepPoseKit's, LEAP's, DeepLabCut's) has its layers and widths at
   its defaults, and `benchmarks/fidelity.py` compares it with the original;
2. list it in `MODELS` below, as "module:Class";
3. add a test in `tests/models/` that checks the output shapes at two input sizes, and add it
   to `SMALL` in `tests/models/test_export.py`, which round-trips every entry of `MODELS`.
   `tests/models/test_registry.py` checks, for every entry, that the hyperparameters read
   here equal those of the real class.

Every model also takes the registry's own hyperparameter `n_graph_maps` (default 0): the
number of posture-graph maps (DeepPoseKit) it outputs after its K keypoint maps. The registry
builds the class with `n_keypoints = K + n_graph_maps` output channels, so no model needs to
know about graphs; consumers read the first K channels as keypoints.

Hyperparameters named in `WEIGHT_SOURCES` only say where a model's first weights come from
(a file, or downloaded ImageNet weights): an exported model carries its weights, so its file
records them blank, and comparing two models' hyperparameters leaves them out.

Models are found only through this table, never by import side effects. Checking
hyperparameters imports no model and no torch: the constructor's signature is read from the
model module's source (`ast`), which is why annotations must be plain `int`, `float`, `bool`
or `str` and defaults literals. So a workflow or a CLI can refuse a bad config in well under a
second; only `build_model` imports the class (and torch).
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

MODELS: dict[str, str] = {
    # The published networks, layer for layer at their defaults:
    "stacked_densenet": "posecore.models.densenet:StackedDenseNet",  # DeepPoseKit
    "stacked_hourglass": "posecore.models.hourglass:StackedHourglass",  # DeepPoseKit
    "leap": "posecore.models.leap:LEAPNet",  # LEAP
    "resnet_deconv": "posecore.models.resnet:ResNetDeconv",  # DeepLabCut
    # posecore's lighter networks after them:
    "densenet_lite": "posecore.models.densenet_lite:StackedDenseNetLite",
    "hourglass_lite": "posecore.models.hourglass_lite:StackedHourglassLite",
    # Not a pose model: a forward that costs next to nothing, to measure the pipeline around one.
    "colour_readout": "posecore.models.readout:ColourReadout",
}

GRAPH_MAPS = "n_graph_maps"
WEIGHT_SOURCES = ("weights_path", "pretrained")
_FIXED = ("n_keypoints", "in_channels")
_PLAIN_TYPES: dict[str, type] = {"int": int, "float": float, "bool": bool, "str": str}


def hyperparameter_types(name: str) -> dict[str, type]:
    """The hyperparameters a model takes (constructor arguments but n_keypoints, in_channels; plus n_graph_maps)."""
    return {key: expected for key, (expected, _) in _signature(name).items()} | {GRAPH_MAPS: int}


def hyperparameter_defaults(name: str) -> dict[str, Any]:
    """The default value of every hyperparameter of a model (`inspect.Parameter.empty` where it has none)."""
    return {key: default for key, (_, default) in _signature(name).items()} | {GRAPH_MAPS: 0}


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
    ranges = hyperparameter_ranges(name) | {GRAPH_MAPS: ((">=", 0),)}
    for key, value in hyperparameters.items():
        for operator, bound in ranges.get(key, ()):
            if not _RANGE_TESTS[operator](value, bound):
                allowed = " and ".join(f"{op} {b}" if op != "in" else f"one of {b}" for op, b in ranges[key])
                raise ValueError(f"hyperparameter {key!r} of model {name!r} must be {allowed}, got {value!r}")


_RANGE_TESTS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": lambda value, bound: value >= bound,
    ">": lambda value, bound: value > bound,
    "<=": lambda value, bound: value <= bound,
    "in": lambda value, bound: value in bound,
}


def hyperparameter_ranges(name: str) -> dict[str, tuple[tuple[str, Any], ...]]:
    """The values each hyperparameter may take: the model class's HYPERPARAMETER_RANGES, read from its source."""
    return _declarations(name)[1]


def without_weight_sources(hyperparameters: Mapping[str, Any]) -> dict[str, Any]:
    """The hyperparameters with those of `WEIGHT_SOURCES` set blank, as an exported model records them."""
    return {key: "" if key in WEIGHT_SOURCES else value for key, value in hyperparameters.items()}


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
    return model_class(name)(n_keypoints=n_outputs, in_channels=in_channels, **model_arguments)


def model_class(name: str) -> type[nn.Module]:
    """The class registered as `name`, its module imported on first use (which imports torch)."""
    module_name, class_name = _entry(name)
    return getattr(importlib.import_module(module_name), class_name)


def _entry(name: str) -> tuple[str, str]:
    if name not in MODELS:
        raise ValueError(f"unknown model architecture {name!r}; known: {', '.join(sorted(MODELS))}")
    module_name, _, class_name = MODELS[name].partition(":")
    return module_name, class_name


def _signature(name: str) -> dict[str, tuple[type, Any]]:
    return _declarations(name)[0]


@functools.cache
def _declarations(name: str) -> tuple[dict[str, tuple[type, Any]], dict[str, tuple[tuple[str, Any], ...]]]:
    """A registered model's hyperparameters, (type, default) each, and its class's ranges, from its source.

    The ranges are the class's HYPERPARAMETER_RANGES, a literal dict: name -> ((operator, bound),
    ...), the operator one of >=, >, <=, in.

    The module is found but not run (its parent package is imported, which is cheap). Raises
    TypeError naming the model and the argument where the constructor is not of the form the
    module docstring asks for.
    """
    module_name, class_name = _entry(name)
    spec = importlib.util.find_spec(module_name)
    if spec is None or spec.origin is None:
        raise ValueError(f"model {name!r}: module {module_name!r} not found")
    source = Path(spec.origin)
    tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
    cls = next((node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == class_name), None)
    if cls is None:
        raise TypeError(f"model {name!r}: no class {class_name!r} at the top level of {source}")
    init = next((node for node in cls.body if isinstance(node, ast.FunctionDef) and node.name == "__init__"), None)
    if init is None:
        raise TypeError(f"model {name!r}: {class_name} must define __init__ itself ({source})")
    arguments = init.args
    if arguments.vararg or arguments.kwarg:
        raise TypeError(f"model {name!r}: {class_name}.__init__ may not take *args or **kwargs ({source})")
    positional = [*arguments.posonlyargs, *arguments.args]
    # Defaults belong to the last positional arguments; keyword-only ones carry their own (None: none).
    defaults: list[ast.expr | None] = [None] * (len(positional) - len(arguments.defaults)) + list(arguments.defaults)
    signature = {}
    for argument, default in zip(
        [*positional, *arguments.kwonlyargs], [*defaults, *arguments.kw_defaults], strict=True
    ):
        if argument.arg in ("self", *_FIXED):
            continue
        where = f"model {name!r}: {class_name}.__init__ argument {argument.arg!r} ({source}:{argument.lineno})"
        signature[argument.arg] = (_plain_type(argument.annotation, where), _literal(default, where))
    ranges: dict[str, tuple[tuple[str, Any], ...]] = {}
    for node in cls.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == "HYPERPARAMETER_RANGES":
            ranges = _literal(node.value, f"model {name!r}: {class_name}.HYPERPARAMETER_RANGES ({source})")
    unknown = set(ranges) - set(signature) or {op for tests in ranges.values() for op, _ in tests} - set(_RANGE_TESTS)
    if unknown:
        raise TypeError(f"model {name!r}: {class_name}.HYPERPARAMETER_RANGES names {sorted(unknown)} ({source})")
    return signature, ranges


def _plain_type(annotation: ast.expr | None, where: str) -> type:
    """The type an annotation names: int, float, bool or str, written bare or as a string."""
    if isinstance(annotation, ast.Name):
        text = annotation.id
    elif isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        text = annotation.value.strip()
    else:
        text = ""
    if text not in _PLAIN_TYPES:
        shown = ast.unparse(annotation) if annotation is not None else "none"
        raise TypeError(f"{where}: annotation must be one of {', '.join(_PLAIN_TYPES)}, got {shown}")
    return _PLAIN_TYPES[text]


def _literal(default: ast.expr | None, where: str) -> Any:
    if default is None:
        return inspect.Parameter.empty
    try:
        return ast.literal_eval(default)
    except (ValueError, TypeError) as error:
        raise TypeError(f"{where}: default must be a literal, got {ast.unparse(default)}") from error


def _is_instance(value: Any, expected: type) -> bool:
    """Type check for plain hyperparameter types: bool is not an int, an int is a float."""
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)
