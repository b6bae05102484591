import pytest
import torch

from posecore.errors import InputError
from posecore.models.resnet import ResNetDeconv


def _torchvision_layout(model: ResNetDeconv) -> dict[str, torch.Tensor]:
    """The backbone's weights under torchvision's resnet names, plus a classifier torchvision would have."""
    state = {key: value.clone() for key, value in model.backbone.state_dict().items()}
    state["fc.weight"] = torch.randn(1000, model.backbone.out_channels)
    state["fc.bias"] = torch.randn(1000)
    return state


@pytest.mark.parametrize(
    ("depth", "dilate_last", "n_deconv", "stride"), [(18, True, 2, 4), (18, False, 1, 16), (50, True, 1, 8)]
)
def test_output_stride_follows_dilation_and_deconvolutions(depth, dilate_last, n_deconv, stride):
    model = ResNetDeconv(3, depth=depth, dilate_last=dilate_last, n_deconv=n_deconv, deconv_channels=16).eval()
    assert model.output_stride == stride and model.input_multiple == (16 if dilate_last else 32)
    with torch.no_grad():
        for height, width in ((64, 96), (32, 160)):
            (maps,) = model(torch.randn(1, 3, height, width))
            assert maps.shape == (1, 3, height // stride, width // stride)


def test_module_names_are_torchvision_s():
    keys = set(ResNetDeconv(2, depth=50).backbone.state_dict())
    expected = {"conv1.weight", "bn1.running_var", "layer1.0.downsample.0.weight", "layer3.5.conv3.weight"}
    assert expected <= keys and "layer4.2.bn3.bias" in keys and not any(k.startswith("layer5") for k in keys)
    assert sum(p.numel() for p in ResNetDeconv(2, depth=50, n_deconv=0).backbone.parameters()) == 23_508_032


def test_weights_from_a_local_torchvision_file_are_loaded_by_name(tmp_path):
    torch.manual_seed(0)
    source = ResNetDeconv(2, depth=18, deconv_channels=8)
    torch.save(_torchvision_layout(source), tmp_path / "resnet18.pth")
    model = ResNetDeconv(2, depth=18, deconv_channels=8, weights_path=str(tmp_path / "resnet18.pth"))
    for key, value in source.backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[key], value), key
    # Grey input: the RGB filters of the first convolution are folded into one channel.
    grey = ResNetDeconv(2, in_channels=1, depth=18, deconv_channels=8, weights_path=str(tmp_path / "resnet18.pth"))
    assert torch.allclose(grey.backbone.conv1.weight[:, 0], source.backbone.conv1.weight.sum(dim=1), atol=1e-6)


def test_weights_of_another_depth_or_a_missing_file_name_the_problem(tmp_path):
    torch.save(_torchvision_layout(ResNetDeconv(2, depth=18, deconv_channels=8)), tmp_path / "resnet18.pth")
    with pytest.raises(
        InputError,
        match=r"resnet18.pth \(key layer1.0.conv1.weight\): shape \(64, 64, 3, 3\) where the depth-50 ResNet has",
    ):
        ResNetDeconv(2, depth=50, deconv_channels=8, weights_path=str(tmp_path / "resnet18.pth"))
    with pytest.raises(InputError, match=r"resnet18.pth \(key layer1.2.conv1.weight\): weight missing"):
        ResNetDeconv(2, depth=34, deconv_channels=8, weights_path=str(tmp_path / "resnet18.pth"))
    with pytest.raises(InputError, match=r"nothing.pth: ResNet weights file not found"):
        ResNetDeconv(2, depth=18, weights_path=str(tmp_path / "nothing.pth"))


def test_unknown_depth_is_an_error():
    with pytest.raises(ValueError, match="depth must be one of 18, 34, 50, 101, 152"):
        ResNetDeconv(2, depth=20)
