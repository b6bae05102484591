import pytest
import torch

from posecore.models.leap import LEAPNet


@pytest.mark.parametrize(("height", "width", "channels", "batch_norm"), [(24, 36, 1, False), (16, 8, 3, True)])
def test_maps_come_out_at_full_resolution(height, width, channels, batch_norm):
    model = LEAPNet(n_keypoints=3, in_channels=channels, filters=4, batch_norm=batch_norm).eval()
    assert isinstance(model.head, torch.nn.ConvTranspose2d)
    assert model.output_stride == 1 and model.input_multiple == 4
    with torch.no_grad():
        outputs = model(torch.randn(2, channels, height, width))
    assert len(outputs) == 1 and outputs[0].shape == (2, 3, height, width)


@pytest.mark.parametrize(("channels", "params"), [(1, 2_513_668), (3, 2_514_820)])
def test_defaults_are_leap_s_layers(channels, params):
    """LEAP's leap_cnn (DeepPoseKit's LEAP has the same layers): its parameter count for 4 keypoints."""
    model = LEAPNet(n_keypoints=4, in_channels=channels)  # DeepPoseKit 0.3.9's counts: fidelity_reference.py
    assert sum(p.numel() for p in model.parameters()) == params
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    convs = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert len(convs) == 13 and isinstance(convs[-1], torch.nn.ConvTranspose2d) and convs[-1].out_channels == 4


def test_the_format_1_decoder_is_kept_as_an_option():
    model = LEAPNet(n_keypoints=4, output_layer="conv")
    assert isinstance(model.head, torch.nn.Conv2d) and model.head.kernel_size == (1, 1)
    assert sum(p.numel() for p in model.parameters()) == 2_656_964
    with pytest.raises(ValueError, match="output_layer must be one of transposed, conv, got 'deconv'"):
        LEAPNet(n_keypoints=4, output_layer="deconv")


def test_input_not_a_multiple_is_an_error_naming_the_size():
    with pytest.raises(ValueError, match=r"18x16 is not a multiple of 4"):
        LEAPNet(n_keypoints=2, filters=4)(torch.randn(1, 1, 18, 16))
