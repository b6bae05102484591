import pytest
import torch

from posecore.models.leap import LEAPNet


@pytest.mark.parametrize(("height", "width", "channels", "batch_norm"), [(24, 36, 1, False), (16, 8, 3, True)])
def test_maps_come_out_at_full_resolution(height, width, channels, batch_norm):
    model = LEAPNet(n_keypoints=3, in_channels=channels, filters=4, batch_norm=batch_norm).eval()
    assert model.output_stride == 1 and model.input_multiple == 4
    with torch.no_grad():
        outputs = model(torch.randn(2, channels, height, width))
    assert len(outputs) == 1 and outputs[0].shape == (2, 3, height, width)


def test_defaults_are_leap_sized():
    model = LEAPNet(n_keypoints=32)  # LEAP: 32 fly keypoints, a few million weights
    n_params = sum(p.numel() for p in model.parameters())
    assert 1e6 < n_params < 5e6
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


def test_input_not_a_multiple_is_an_error_naming_the_size():
    with pytest.raises(ValueError, match=r"18x16 is not a multiple of 4"):
        LEAPNet(n_keypoints=2, filters=4)(torch.randn(1, 1, 18, 16))
