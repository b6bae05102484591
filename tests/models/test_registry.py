import inspect
import subprocess
import sys
import textwrap
import typing

import pytest
import torch
from torch import nn

from posecore.models.registry import (
    MODELS,
    build_model,
    check_hyperparameters,
    hyperparameter_defaults,
    hyperparameter_ranges,
    hyperparameter_types,
    model_class,
    without_weight_sources,
)


def test_builds_a_registered_model_with_its_hyperparameters():
    model = build_model("stacked_densenet", n_keypoints=3, in_channels=1, growth_rate=8, compression_factor=1)
    assert isinstance(model, nn.Module)
    assert model.n_keypoints == 3 and model.in_channels == 1


def test_unknown_architecture_lists_the_known_ones():
    with pytest.raises(
        ValueError,
        match=r"unknown model architecture 'resnet'; known: colour_readout, densenet_lite, hourglass_lite, leap, "
        r"resnet_deconv, stacked_densenet, stacked_hourglass",
    ):
        build_model("resnet", n_keypoints=3, in_channels=3)


def test_unknown_hyperparameter_is_named():
    with pytest.raises(ValueError, match=r"no hyperparameter 'growth'.*growth_rate"):
        build_model("stacked_densenet", n_keypoints=3, in_channels=3, growth=8)


@pytest.mark.parametrize(("key", "value"), [("growth_rate", "8"), ("n_stacks", True), ("compression_factor", "half")])
def test_wrongly_typed_hyperparameter_is_named(key, value):
    with pytest.raises(ValueError, match=rf"hyperparameter '{key}' of model 'stacked_densenet' must be"):
        build_model("stacked_densenet", n_keypoints=3, in_channels=3, **{key: value})


def test_every_model_has_defaults_for_its_hyperparameters():
    for name in MODELS:
        defaults = hyperparameter_defaults(name)
        assert "n_keypoints" not in defaults and "in_channels" not in defaults
        assert all(value is not inspect.Parameter.empty for value in defaults.values())


def test_graph_maps_add_output_channels_after_the_keypoints():
    for name, hyperparameters in [("leap", {"filters": 4}), ("stacked_hourglass", {"filters": 8})]:
        model = build_model(name, n_keypoints=3, in_channels=1, n_graph_maps=2, **hyperparameters).eval()
        assert hyperparameter_defaults(name)["n_graph_maps"] == 0
        outputs = model(torch.zeros(1, 1, 32, 32))
        assert all(maps.shape[1] == 5 for maps in outputs)
    with pytest.raises(ValueError, match="'n_graph_maps' of model 'leap' must be >= 0, got -1"):
        build_model("leap", n_keypoints=3, in_channels=1, n_graph_maps=-1)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_hyperparameters_read_from_the_source_equal_the_real_constructor(name):
    """The registry reads constructors with `ast` (no torch); it must agree with the imported class."""
    init = model_class(name).__init__
    hints = typing.get_type_hints(init)
    parameters = {
        key: p
        for key, p in inspect.signature(init).parameters.items()
        if key not in ("self", "n_keypoints", "in_channels")
    }
    assert hyperparameter_types(name) == {**{key: hints[key] for key in parameters}, "n_graph_maps": int}
    assert hyperparameter_defaults(name) == {**{key: p.default for key, p in parameters.items()}, "n_graph_maps": 0}
    assert list(hyperparameter_types(name)) == [*parameters, "n_graph_maps"]


@pytest.fixture
def toy_models(tmp_path, monkeypatch):
    """Register a model class `Toy` from a throwaway module written by the test, named as the model."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def register(name: str, source: str) -> None:
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        monkeypatch.setitem(MODELS, name, f"{name}:Toy")

    return register


def test_a_constructor_the_registry_cannot_read_is_an_error_naming_the_argument(toy_models):
    toy_models(
        "toy_list_annotation",
        """
        class Toy:
            def __init__(self, n_keypoints: int, in_channels: int, widths: list[int] = [8, 16]) -> None:
                pass
    """,
    )
    with pytest.raises(
        TypeError, match=r"'toy_list_annotation': Toy.__init__ argument 'widths' .*int, float, bool, str"
    ):
        check_hyperparameters("toy_list_annotation", {})
    toy_models(
        "toy_computed_default",
        """
        WIDTH = 8
        class Toy:
            def __init__(self, n_keypoints: int, in_channels: int, width: int = WIDTH) -> None:
                pass
    """,
    )
    with pytest.raises(TypeError, match=r"argument 'width' .*default must be a literal, got WIDTH"):
        check_hyperparameters("toy_computed_default", {})


def test_string_annotations_and_keyword_only_arguments_are_read(toy_models):
    toy_models(
        "toy_keyword_only",
        """
        class Toy:
            def __init__(self, n_keypoints: int, in_channels: int, *, scale: "float" = -1.5, mode: str) -> None:
                pass
    """,
    )
    assert hyperparameter_types("toy_keyword_only") == {"scale": float, "mode": str, "n_graph_maps": int}
    assert hyperparameter_defaults("toy_keyword_only") == {
        "scale": -1.5,
        "mode": inspect.Parameter.empty,
        "n_graph_maps": 0,
    }


def test_weight_sources_are_blanked_for_export():
    hyperparameters = {"depth": 18, "pretrained": "imagenet", "weights_path": "/data/resnet18.pth", "n_graph_maps": 0}
    assert without_weight_sources(hyperparameters) == {
        "depth": 18,
        "pretrained": "",
        "weights_path": "",
        "n_graph_maps": 0,
    }


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_default_is_within_its_declared_range_and_the_bound_outside_is_refused(name):
    defaults = hyperparameter_defaults(name)
    check_hyperparameters(name, {k: v for k, v in defaults.items() if v is not inspect.Parameter.empty})
    for key, tests in hyperparameter_ranges(name).items():
        for operator, bound in tests:
            outside = {">=": lambda b: b - 1, ">": lambda b: b, "<=": lambda b: b + 1, "in": lambda b: max(b) + 1}
            with pytest.raises(ValueError, match=rf"hyperparameter '{key}' of model '{name}' must be .*, got"):
                check_hyperparameters(name, {key: type(defaults[key])(outside[operator](bound))})


def test_a_hyperparameter_out_of_range_stops_the_config_before_torch_is_imported():
    code = (
        "import sys\n"
        "from posecore.errors import InputError\n"
        "from posecore.train.config import ModelConfig\n"
        "try:\n"
        "    model = {'architecture': 'densenet_lite', 'hyperparameters': {'growth_rate': -4}}\n"
        "    ModelConfig.from_dict(model, 'c.yaml')\n"
        "except InputError as error:\n"
        "    print(error)\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == [
        "c.yaml (key model.hyperparameters.growth_rate): hyperparameter 'growth_rate' of model 'densenet_lite' "
        "must be >= 1, got -4",
        "False",
    ]
