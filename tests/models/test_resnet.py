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
    ("depth", "dilate_last", "n_deconv", "output_layer", "stride"),
    [(18, True, 0, "transposed", 8), (18, True, 2, "conv", 4), (18, False, 1, "conv", 16), (50, True, 1, "conv", 8)],
)
def test_output_stride_follows_dilation_and_deconvolutions(depth, dilate_last, n_deconv, output_layer, stride):
    model = ResNetDeconv(3, depth=depth, dilate_last=dilate_last, n_deconv=n_deconv, deconv_channels=16,
                         output_layer=output_layer).eval()  # fmt: skip
    assert model.output_stride == stride and model.input_multiple == (16 if dilate_last else 32)
    with torch.no_grad():
        for height, width in ((64, 96), (32, 160)):
            (maps,) = model(torch.randn(1, 3, height, width))
            assert maps.shape == (1, 3, height // stride, width // stride)


def test_defaults_are_deeplabcut_s_resnet_50():
    """DeepLabCut's resnet_50 at stride 8 (its part-map head): 23,581,764 weights for 4 keypoints, as tf-slim has."""
    with torch.device("meta"):
        model = ResNetDeconv(4)
    assert model.output_stride == 8 and len(model.deconv) == 0
    assert isinstance(model.head, torch.nn.ConvTranspose2d) and model.head.kernel_size == (3, 3)
    assert sum(p.numel() for p in model.parameters()) == 23_581_764  # benchmarks/fidelity_reference.py


def test_module_names_are_torchvision_s():
    keys = set(ResNetDeconv(2, depth=50).backbone.state_dict())
    expected = {"conv1.weight", "bn1.running_var", "layer1.0.downsample.0.weight", "layer3.5.conv3.weight"}
    assert expected <= keys and "layer4.2.bn3.bias" in keys and not any(k.startswith("layer5") for k in keys)
    assert sum(p.numel() for p in ResNetDeconv(2, depth=50).backbone.parameters()) == 23_508_032


def test_weights_from_a_local_torchvision_file_are_loaded_by_name(tmp_path):
    torch.manual_seed(0)
    source = ResNetDeconv(2, depth=18)
    torch.save(_torchvision_layout(source), tmp_path / "resnet18.pth")
    model = ResNetDeconv(2, depth=18, weights_path=str(tmp_path / "resnet18.pth"))
    for key, value in source.backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[key], value), key
    # Grey input: the RGB filters of the first convolution are folded into one channel.
    grey = ResNetDeconv(2, in_channels=1, depth=18, weights_path=str(tmp_path / "resnet18.pth"))
    assert torch.allclose(grey.backbone.conv1.weight[:, 0], source.backbone.conv1.weight.sum(dim=1), atol=1e-6)


def test_weights_of_another_depth_or_architecture_name_the_file_and_what_it_holds(tmp_path):
    torch.save(_torchvision_layout(ResNetDeconv(2, depth=18)), tmp_path / "resnet18.pth")
    with pytest.raises(
        InputError,
        match=r"resnet18.pth \(key layer1.0.conv1.weight\): shape \(64, 64, 3, 3\) where the depth-50 ResNet has "
        r"\(64, 64, 1, 1\): it holds a torchvision ResNet-18",
    ):
        ResNetDeconv(2, depth=50, weights_path=str(tmp_path / "resnet18.pth"))
    with pytest.raises(
        InputError,
        match=r"resnet18.pth \(key layer1.2.conv1.weight\): weight missing: it holds a torchvision ResNet-18, "
        r"this model's backbone is a ResNet-34",
    ):
        ResNetDeconv(2, depth=34, weights_path=str(tmp_path / "resnet18.pth"))
    from posecore.models.leap import LEAPNet

    torch.save(LEAPNet(2, filters=2).state_dict(), tmp_path / "leap.pth")
    with pytest.raises(
        InputError, match=r"leap.pth \(key conv1.weight\): weight missing: it is not a torchvision ResNet"
    ):
        ResNetDeconv(2, depth=18, weights_path=str(tmp_path / "leap.pth"))
    with pytest.raises(InputError, match=r"nothing.pth: ResNet weights file not found"):
        ResNetDeconv(2, depth=18, weights_path=str(tmp_path / "nothing.pth"))


def test_unknown_depth_or_option_is_an_error():
    with pytest.raises(ValueError, match="depth must be one of 18, 34, 50, 101, 152"):
        ResNetDeconv(2, depth=20)
    with pytest.raises(ValueError, match="pretrained must be 'imagenet' or '' \\(none\\), got 'coco'"):
        ResNetDeconv(2, depth=18, pretrained="coco")


def test_imagenet_weights_are_downloaded_once_into_the_hub_cache_and_reused_offline(published_resnet18, tmp_path):
    source, state = published_resnet18
    model = ResNetDeconv(2, depth=18, pretrained="imagenet")
    cached = tmp_path / "torch-home" / "hub" / "checkpoints" / source.name
    assert cached.read_bytes() == source.read_bytes()
    assert torch.equal(model.backbone.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])
    source.unlink()  # the network is gone: the cached copy serves
    again = ResNetDeconv(2, depth=18, pretrained="imagenet")
    assert torch.equal(again.backbone.conv1.weight, state["conv1.weight"])


def test_a_download_or_a_cached_copy_whose_hash_differs_from_the_published_one_is_refused(published_resnet18, tmp_path):
    source, _ = published_resnet18
    good = source.read_bytes()
    source.write_bytes(good[:-10] + b"0123456789")  # the server holds an altered file
    with pytest.raises(InputError, match=r"resnet18-[0-9a-f]{8}\.pth: the downloaded file is not the published one"):
        ResNetDeconv(2, depth=18, pretrained="imagenet")
    cached = tmp_path / "torch-home" / "hub" / "checkpoints" / source.name
    assert not cached.exists()  # torch.hub deleted the bad download
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(good[: len(good) // 2])  # a truncated copy put in the cache by hand
    with pytest.raises(InputError, match=r"checkpoints/resnet18-[0-9a-f]{8}\.pth: SHA-256 .* does not begin with"):
        ResNetDeconv(2, depth=18, pretrained="imagenet")


def test_without_network_or_cached_file_the_error_says_both_ways(published_resnet18, tmp_path):
    source, _ = published_resnet18
    source.unlink()
    cached = tmp_path / "torch-home" / "hub" / "checkpoints" / source.name
    with pytest.raises(InputError) as error:
        ResNetDeconv(2, depth=18, pretrained="imagenet")
    message = str(error.value)
    assert "cannot download the ImageNet weights of ResNet-18" in message and source.name in message
    assert f"to {cached}" in message and "weights_path" in message and "TORCH_HOME" in message
