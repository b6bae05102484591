import pytest
import torch

from posecore.models.readout import ColourReadout


@pytest.mark.parametrize(("height", "width", "channels"), [(24, 36, 1), (16, 8, 3)])
def test_maps_come_out_at_a_quarter_of_the_input(height, width, channels):
    model = ColourReadout(n_keypoints=3, in_channels=channels).eval()
    with torch.no_grad():
        outputs = model(torch.randn(2, channels, height, width))
    assert len(outputs) == 1 and outputs[0].shape == (2, 3, height // 4, width // 4)


def test_each_cell_reads_only_its_top_left_pixel():
    model = ColourReadout(n_keypoints=1, in_channels=1).eval()
    with torch.no_grad():
        model.readout.weight.fill_(2.0)
        model.readout.bias.fill_(1.0)
        x = torch.zeros(1, 1, 8, 8)
        x[0, 0, 4, 0] = 3.0  # the top-left pixel of one cell
        x[0, 0, 1, 5] = 9.0  # not a cell's top-left pixel: not read
        (maps,) = model(x)
    assert maps[0, 0].tolist() == [[1.0, 1.0], [7.0, 1.0]]


def test_input_not_a_multiple_is_an_error_naming_the_size():
    with pytest.raises(ValueError, match=r"18x16 is not a multiple of 4"):
        ColourReadout(n_keypoints=2, in_channels=1)(torch.randn(1, 1, 18, 16))
