import inspect

import pytest
import torch
from torch import nn

from posecore.models.registry import MODELS, build_model, hyperparameter_defaults


def test_builds_a_registered_model_with_its_hyperparameters():
    model = build_model("stacked_densenet", n_keypoints=3, in_channels=1, growth_rate=8, compression=1)
    assert isinstance(model, nn.Module)
    assert model.n_keypoints == 3 and model.in_channels == 1


def test_unknown_architecture_lists_the_known_ones():
    with pytest.raises(
        ValueError,
        match=r"unknown model architecture 'resnet'; known: leap, resnet_deconv, stacked_densenet, stacked_hourglass",
    ):
        build_model("resnet", n_keypoints=3, in_channels=3)


def test_unknown_hyperparameter_is_named():
    with pytest.raises(ValueError, match=r"no hyperparameter 'growth'.*growth_rate"):
        build_model("stacked_densenet", n_keypoints=3, in_channels=3, growth=8)


@pytest.mark.parametrize(("key", "value"), [("growth_rate", "8"), ("n_stacks", True), ("compression", "half")])
def test_wrongly_typed_hyperparameter_is_named(key, value):
    with pytest.raises(ValueError, match=rf"hyperparameter '{key}' of model 'stacked_densenet' must be"):
        build_model("stacked_densenet", n_keypoints=3, in_channels=3, **{key: value})


def test_every_model_has_defaults_for_its_hyperparameters():
    for name in MODELS:
        defaults = hyperparameter_defaults(name)
        assert "n_keypoints" not in defaults and "in_channels" not in defaults
        assert all(value is not inspect.Parameter.empty for value in defaults.values())


def test_graph_maps_add_output_channels_after_the_keypoints():
    for name, hyperparameters in [("leap", {"filters": 4}), ("stacked_hourglass", {"n_features": 8})]:
        model = build_model(name, n_keypoints=3, in_channels=1, n_graph_maps=2, **hyperparameters).eval()
        assert hyperparameter_defaults(name)["n_graph_maps"] == 0
        outputs = model(torch.zeros(1, 1, 32, 32))
        assert all(maps.shape[1] == 5 for maps in outputs)
    with pytest.raises(ValueError, match="'n_graph_maps' must be >= 0"):
        build_model("leap", n_keypoints=3, in_channels=1, n_graph_maps=-1)
