import pytest
import torch

from posecore.models.densenet_lite import StackedDenseNetLite


@pytest.mark.parametrize(("height", "width", "channels"), [(48, 80, 3), (16, 112, 1)])
def test_every_stack_outputs_maps_at_a_quarter_of_the_input(height, width, channels):
    model = StackedDenseNetLite(n_keypoints=5, in_channels=channels, n_stacks=3, growth_rate=8, n_transitions=2).eval()
    assert model.input_multiple == 16 and model.output_stride == 4
    with torch.no_grad():
        outputs = model(torch.randn(2, channels, height, width))
    assert len(outputs) == 3
    for maps in outputs:
        assert maps.shape == (2, 5, height // 4, width // 4)
        assert torch.isfinite(maps).all()


def test_input_not_a_multiple_is_an_error_naming_the_size():
    model = StackedDenseNetLite(n_keypoints=2, growth_rate=8, n_transitions=2)
    with pytest.raises(ValueError, match=r"50x64 is not a multiple of 16"):
        model(torch.randn(1, 3, 50, 64))


def test_wrong_channel_count_is_an_error():
    model = StackedDenseNetLite(n_keypoints=2, in_channels=1, growth_rate=8, n_transitions=1)
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        model(torch.randn(1, 3, 32, 32))


def test_the_shipped_default_is_the_network_of_before():
    """config/config.yaml's model (2 stacks, growth 16), and the 357,868 weights it had at growth 32."""
    assert sum(p.numel() for p in StackedDenseNetLite(n_keypoints=4, growth_rate=32).parameters()) == 357_868
    model = StackedDenseNetLite(n_keypoints=4, n_stacks=2, growth_rate=16)
    assert len(model.hourglasses) == 2 and model.input_multiple == 32
    assert sum(p.numel() for p in model.parameters()) == 93_753


def test_later_stacks_use_the_earlier_ones():
    model = StackedDenseNetLite(n_keypoints=2, n_stacks=2, growth_rate=8, n_transitions=1).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        first, final = model(x)
        # Changing the first head changes the final output (maps feed the next stack).
        model.heads[0][-1].bias.add_(1.0)
        first_changed, final_changed = model(x)
    assert not torch.allclose(first, first_changed)
    assert not torch.allclose(final, final_changed)
