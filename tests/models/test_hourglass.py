import pytest
import torch
from torch import nn

from posecore.models.hourglass import StackedHourglass

# DeepPoseKit 0.3.9's own figures for 640x480 RGB frames and 4 keypoints (benchmarks/fidelity_reference.py):
# trainable parameters, Keras' count with BatchNorm statistics, and convolutions.
DEEPPOSEKIT = [({}, 3_549_956, 3_587_844, 51), ({"n_stacks": 2}, 6_485_776, 6_557_464, 94)]


@pytest.mark.parametrize(("hyperparameters", "params", "params_all", "convs"), DEEPPOSEKIT)
def test_layers_and_widths_are_deepposekit_s(hyperparameters, params, params_all, convs):
    with torch.device("meta"):
        model = StackedHourglass(4, 3, **hyperparameters)
    assert sum(p.numel() for p in model.parameters()) == params
    statistics = sum(b.numel() for name, b in model.named_buffers() if name.endswith(("running_mean", "running_var")))
    assert params + statistics == params_all
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == convs


@pytest.mark.parametrize(("height", "width", "channels"), [(32, 48, 3), (16, 80, 1)])
def test_every_stack_outputs_maps_at_a_quarter_of_the_input(height, width, channels):
    model = StackedHourglass(5, channels, n_stacks=3, filters=8, n_transitions=2).eval()
    assert model.input_multiple == 16 and model.output_stride == 4
    with torch.no_grad():
        outputs = model(torch.randn(2, channels, height, width))
    assert len(outputs) == 3
    assert all(maps.shape == (2, 5, height // 4, width // 4) and torch.isfinite(maps).all() for maps in outputs)


def test_later_stacks_read_the_earlier_stacks_maps():
    model = StackedHourglass(2, n_stacks=2, filters=8, n_transitions=1).eval()
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        first, final = model(x)
        model.outputs[0].maps[-1].bias.add_(1.0)
        first_changed, final_changed = model(x)
    assert not torch.allclose(first, first_changed) and not torch.allclose(final, final_changed)


def test_input_not_a_multiple_is_an_error_naming_the_size():
    with pytest.raises(ValueError, match=r"40x64 is not a multiple of 32"):
        StackedHourglass(2, filters=8)(torch.randn(1, 3, 40, 64))
