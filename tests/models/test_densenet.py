import pytest
import torch
from torch import nn

from posecore.models.densenet import StackedDenseNet

# DeepPoseKit 0.3.9's own figures for 640x480 RGB frames and 4 keypoints (benchmarks/fidelity_reference.py):
# trainable parameters and convolutions of StackedDenseNet(...).train_model.
DEEPPOSEKIT = [
    ({}, 4, 1_542_346, 35),  # its defaults: 1 stack, growth rate 48
    ({"n_stacks": 2, "growth_rate": 32}, 4, 1_422_182, 60),  # its paper's and examples'
    ({"n_stacks": 2, "growth_rate": 32}, 10, 1_446_357, 60),  # the same with posture-graph maps: 10 outputs
]


@pytest.mark.parametrize(("hyperparameters", "n_maps", "params", "convs"), DEEPPOSEKIT)
def test_layers_and_widths_are_deepposekit_s(hyperparameters, n_maps, params, convs):
    with torch.device("meta"):
        model = StackedDenseNet(n_maps, 3, **hyperparameters)
    assert sum(p.numel() for p in model.parameters()) == params
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == convs
    widths = {m.out_channels for m in model.stacks[0].modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)}
    assert max(widths) == 3 * hyperparameters.get("growth_rate", 48)  # dense blocks deeper than 1/4 grow 3x
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.stacks.modules())  # SELU, no BatchNorm inside


@pytest.mark.parametrize(("height", "width", "channels"), [(32, 96, 3), (64, 32, 1)])
def test_the_front_end_and_every_stack_output_maps_at_a_quarter(height, width, channels):
    model = StackedDenseNet(3, channels, n_stacks=2, growth_rate=4, n_transitions=3).eval()
    assert model.input_multiple == 32 and model.output_stride == 4
    with torch.no_grad():
        outputs = model(torch.randn(2, channels, height, width))
    assert len(outputs) == 3  # DeepPoseKit's output_0 (front end), output_1, output_2
    assert all(maps.shape == (2, 3, height // 4, width // 4) and torch.isfinite(maps).all() for maps in outputs)


def test_each_stack_reads_the_front_end_and_the_previous_maps():
    model = StackedDenseNet(2, 3, n_stacks=2, growth_rate=4, n_transitions=1).eval()
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        front, first, final = model(x)
        model.front_head.bias.add_(1.0)  # moves the front end's maps only
        front_moved, first_moved, final_moved = model(x)
    assert not torch.allclose(front, front_moved)
    assert not torch.allclose(first, first_moved) and not torch.allclose(final, final_moved)


def test_bad_settings_and_inputs_are_errors_naming_them():
    with pytest.raises(ValueError, match=r"compression_factor must be in \(0, 1\], got 1.5"):
        StackedDenseNet(2, compression_factor=1.5)
    with pytest.raises(ValueError, match=r"50x64 is not a multiple of 32"):
        StackedDenseNet(2, growth_rate=4)(torch.randn(1, 3, 50, 64))
