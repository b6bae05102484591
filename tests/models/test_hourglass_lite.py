import pytest
import torch

from posecore.models.hourglass_lite import StackedHourglassLite


@pytest.mark.parametrize(("height", "width", "channels"), [(32, 48, 3), (16, 80, 1)])
def test_every_stack_outputs_maps_at_a_quarter_of_the_input(height, width, channels):
    model = StackedHourglassLite(n_keypoints=5, in_channels=channels, n_stacks=3, n_features=8, n_transitions=2).eval()
    assert model.input_multiple == 16 and model.output_stride == 4
    with torch.no_grad():
        outputs = model(torch.randn(2, channels, height, width))
    assert len(outputs) == 3
    assert all(maps.shape == (2, 5, height // 4, width // 4) and torch.isfinite(maps).all() for maps in outputs)


def test_input_not_a_multiple_is_an_error_naming_the_size():
    with pytest.raises(ValueError, match=r"40x64 is not a multiple of 32"):
        StackedHourglassLite(n_keypoints=2, n_features=8)(torch.randn(1, 3, 40, 64))


def test_later_stacks_read_the_earlier_stacks_maps():
    model = StackedHourglassLite(n_keypoints=2, n_stacks=2, n_features=8, n_transitions=1).eval()
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        first, final = model(x)
        model.heads[0].bias.add_(1.0)
        first_changed, final_changed = model(x)
    assert not torch.allclose(first, first_changed) and not torch.allclose(final, final_changed)


def test_defaults_are_a_small_two_stack_hourglass():
    model = StackedHourglassLite(n_keypoints=4)
    assert len(model.hourglasses) == 2 and model.input_multiple == 32
    assert 1e5 < sum(p.numel() for p in model.parameters()) < 2e6
