import numpy as np
import pytest
import torch
from torch import nn

from posecore.models import LoadedModel, ModelMeta, build_model
from posecore.predict import Predictor, prepare_images
from posecore.train.targets import confidence_maps

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class BrightestPixelModel(nn.Module):
    """Maps with a Gaussian (sigma 2 px) at each image's brightest pixel: a model whose answer is known."""

    output_stride = 4
    input_multiple = 16

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        b, _, h, w = x.shape
        assert h % self.input_multiple == 0 and w % self.input_multiple == 0
        index = x[:, 0].reshape(b, -1).argmax(dim=-1)
        xy = torch.stack([index % w, index // w], dim=-1).float()  # (B, 2) image pixels
        maps, _ = confidence_maps(xy[:, None, :], (h // 4, w // 4), 4, 2.0)  # (B, 1, h, w)
        return [maps * 0.5, maps]


def _meta(channels: int = 1) -> ModelMeta:
    return ModelMeta("test", {}, ("dot",), (61, 83), channels, (10.0,) * channels, (2.0,) * channels, 4)


def test_predictions_are_in_image_pixels_for_odd_sizes_and_batches():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 50, size=(5, 61, 83, 1), dtype=np.uint8)  # pads to 64 x 96
    # (x, y), kept out of the outermost map cells, where find_peaks does not refine; 78 and 57 lie in
    # cells whose right/lower neighbour partly covers padding (the image is 61 x 83, the map covers 64 x 96).
    dots = np.array([[5, 6], [78, 57], [40, 30], [17, 45], [61, 8]])
    for image, (x, y) in zip(images, dots, strict=True):
        image[y, x] = 255
    predictor = Predictor(LoadedModel(BrightestPixelModel(), _meta(), "sha"), batch_size=2)
    out = predictor.predict(images)
    assert out.shape == (5, 1, 3) and out.dtype == np.float32
    assert np.allclose(out[:, 0, :2], dots, atol=0.1)
    assert np.allclose(out[:, 0, 2], 1.0, atol=0.4)  # the final stack's map, not the first


class FixedMapsModel(nn.Module):
    """The same maps (1, K, h, w) for every image: a model whose peaks are known."""

    output_stride = 4
    input_multiple = 16

    def __init__(self, maps: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("maps", maps)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.maps.expand(len(x), -1, -1, -1)]


@pytest.mark.parametrize("extent_px", [0.0, 24.0])
def test_a_peak_off_the_animal_is_moved_onto_it_when_the_model_knows_the_animals_size(extent_px):
    animal = torch.tensor([[[75.0, 60.0], [88.0, 54.0], [91.0, 69.0], [70.0, 71.0]]])  # (1, 4, 2) image pixels
    maps, _ = confidence_maps(animal, (40, 60), 4, 6.0)  # (1, 4, 40, 60)
    decoy, _ = confidence_maps(torch.tensor([[[226.0, 151.0]]]), (40, 60), 4, 6.0)  # a bottom-right corner
    on_animal = 0.9 * maps[0, 2].max().item()
    maps[0, 2] = torch.maximum(0.9 * maps[0, 2], decoy[0, 0])  # keypoint 2: 0.9x on the animal, the corner higher
    meta = ModelMeta("test", {}, tuple("abcd"), (160, 240), 1, (0.0,), (1.0,), 4, extent_px=extent_px)
    predictor = Predictor(LoadedModel(FixedMapsModel(maps), meta, "sha"), batch_size=2)
    out = predictor.predict(np.zeros((3, 160, 240, 1), dtype=np.uint8))
    if extent_px:  # reach 1.25 x 24 px = 30 px from the animal: the corner is off it
        assert np.allclose(out[:, :, :2], animal.numpy(), atol=0.05)
        assert np.allclose(out[:, 2, 2], on_animal, atol=1e-6)  # the score of the peak it took
    else:  # a model without a label extent (trained before the prior) keeps the global maximum
        assert np.allclose(out[:, 2, :2], [226.0, 151.0], atol=0.05)


@pytest.mark.parametrize("ranges", [(), ((0, 1, -4.0, 4.0, -84.0, -76.0), (1, 2, -48.0, -32.0, -48.0, -32.0))])
def test_a_keypoint_on_the_wrong_paw_moves_when_the_model_knows_the_labels_offset_ranges(ranges):
    # A side-view paw above its bottom-view self (the same x), and a second paw below-right in the
    # bottom view; keypoint 1's map is highest on the second paw.
    paws = torch.tensor([[[81.0, 34.0], [83.0, 113.0], [125.0, 153.0]]])  # (1, 3, 2) image pixels
    maps, _ = confidence_maps(paws, (40, 60), 4, 6.0)  # (1, 3, 40, 60)
    maps[0, 1] = torch.maximum(0.7 * maps[0, 1], maps[0, 2])
    meta = ModelMeta("test", {}, tuple("abc"), (160, 240), 1, (0.0,), (1.0,), 4, offset_ranges=ranges)
    predictor = Predictor(LoadedModel(FixedMapsModel(maps), meta, "sha"), batch_size=2)
    out = predictor.predict(np.zeros((3, 160, 240, 1), dtype=np.uint8))
    expected = paws.numpy().repeat(3, axis=0)
    if ranges:
        assert np.allclose(out[:, :, :2], expected, atol=0.05)
        # Without the priors (a camera the labels do not cover) the global maxima come back.
        plain = Predictor(LoadedModel(FixedMapsModel(maps), meta, "sha"), batch_size=2, priors=False)
        assert np.allclose(plain.predict(np.zeros((1, 160, 240, 1), dtype=np.uint8))[0, 1, :2], expected[0, 2])
    else:  # a model trained before the layout prior keeps the global maximum
        assert np.allclose(out[:, 1, :2], expected[:, 2], atol=0.05)


def test_prepare_images_normalises_and_pads_at_bottom_right():
    images = np.full((2, 5, 7, 3), 30, dtype=np.uint8)
    x = prepare_images(images, (10.0, 20.0, 30.0), (2.0, 5.0, 10.0), multiple=8)
    assert x.shape == (2, 3, 8, 8) and x.dtype == torch.float32
    assert x[0, :, :5, :7].flatten(1).unique(dim=1).squeeze(1).tolist() == [10.0, 2.0, 0.0]
    assert (x[:, :, 5:] == 0).all() and (x[:, :, :, 7:] == 0).all()
    with pytest.raises(ValueError, match="images have 3 channels, the model takes 1"):
        prepare_images(images, (0.0,), (1.0,), 8)
    with pytest.raises(ValueError, match="uint8"):
        prepare_images(images.astype(np.float32), (0.0,) * 3, (1.0,) * 3, 8)


def test_a_real_model_predicts_finite_points_on_any_image_size():
    model = build_model("stacked_densenet", 3, 3, growth_rate=8, n_transitions=2).eval()
    meta = ModelMeta(
        "stacked_densenet",
        {"growth_rate": 8, "n_transitions": 2},
        ("a", "b", "c"),
        (50, 70),
        3,
        (0.0,) * 3,
        (1.0,) * 3,
        4,
    )
    images = np.random.default_rng(1).integers(0, 255, size=(3, 50, 70, 3), dtype=np.uint8)
    out = Predictor(LoadedModel(model, meta, "sha")).predict(images)
    assert out.shape == (3, 3, 3) and np.isfinite(out).all()
    assert (out[..., 0] >= -2).all() and (out[..., 0] <= 70).all() and (out[..., 1] <= 50).all()


def test_bfloat16_on_the_cpu_is_asked_for_and_gives_the_float32_maps_to_bfloat16s_precision():
    torch.manual_seed(0)
    model = build_model("stacked_densenet", 3, 3, growth_rate=8, n_transitions=2).eval()
    meta = ModelMeta("stacked_densenet", {"growth_rate": 8, "n_transitions": 2}, ("a", "b", "c"), (64, 80), 3,
                     (0.0,) * 3, (255.0,) * 3, 4)  # fmt: skip
    images = np.random.default_rng(2).integers(0, 255, size=(4, 64, 80, 3), dtype=np.uint8)
    exact = Predictor(LoadedModel(model, meta, "sha"))  # "auto" is float32 on the CPU
    fast = Predictor(LoadedModel(model, meta, "sha"), precision="bfloat16")
    assert exact.dtype == torch.float32 and fast.dtype == torch.bfloat16
    # On the CPU the weights are cast once (no autocast at every call); the loaded model stays float32.
    assert {p.dtype for p in fast.model.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    want, got = exact.maps(images), fast.maps(images)
    assert got.dtype == torch.float32 and got.shape == want.shape == (4, 3, 16, 20)
    difference = (got - want).abs().max()
    assert 0 < difference <= 0.05 * want.abs().max(), "bfloat16 ran (not float32), to its precision"
    with pytest.raises(ValueError, match="unknown precision 'half'"):
        Predictor(LoadedModel(model, meta, "sha"), precision="half")


def test_resolve_device_never_falls_back_silently(monkeypatch):
    from posecore.predict import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="no GPU"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="tpu"):
        resolve_device("tpu")  # type: ignore[arg-type]


def test_folding_batchnorm_keeps_what_the_model_computes():
    from posecore.predict import ClampConv, fold_batchnorm

    torch.manual_seed(0)
    model = build_model("densenet_lite", 3, 3, growth_rate=8, n_transitions=2, n_stacks=2)
    for module in model.modules():  # trained-looking statistics, with negative and zero scales
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.2, 3)
            module.weight.data.uniform_(-1.5, 1.5)
            module.weight.data[0] = 0.0
            module.bias.data.uniform_(-0.5, 0.5)
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    meta = ModelMeta("densenet_lite", {}, ("a", "b", "c"), (64, 80), 3, (0.0,) * 3, (1.0,) * 3, 4)
    predictor = Predictor(LoadedModel(model, meta, "sha"))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in predictor.model.modules())
    assert any(isinstance(m, ClampConv) for m in predictor.model.modules())
    x = torch.randn(2, 3, 64, 80)
    with torch.inference_mode():
        reference = model(x)
        folded = predictor.model(x.contiguous(memory_format=torch.channels_last))
    for want, got in zip(reference, folded, strict=True):
        assert torch.allclose(want, got, atol=1e-5 * want.abs().max().item())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the loaded model is untouched
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(model.train())


@pytest.mark.gpu
def test_on_a_gpu_a_real_network_runs_there_and_gives_the_cpus_maps():
    from posecore.predict import resolve_device

    assert resolve_device("auto") == "cuda" and resolve_device("cuda") == "cuda"
    torch.manual_seed(0)
    model = build_model("stacked_densenet", 3, 3, growth_rate=8, n_transitions=2).eval()
    hyperparameters = {"growth_rate": 8, "n_transitions": 2}
    meta = ModelMeta("stacked_densenet", hyperparameters, ("a", "b", "c"), (64, 80), 3, (0.0,) * 3, (255.0,) * 3, 4)
    images = np.random.default_rng(2).integers(0, 255, size=(4, 64, 80, 3), dtype=np.uint8)
    on_cpu = Predictor(LoadedModel(model, meta, "sha")).maps(images)  # (4, 3, 16, 20)
    exact = Predictor(LoadedModel(model, meta, "sha"), device="cuda", precision="float32", compile="never")
    assert next(exact.model.parameters()).is_cuda and exact.dtype == torch.float32
    torch.testing.assert_close(exact.maps(images).cpu(), on_cpu, atol=1e-4, rtol=1e-3)
    fast = Predictor(LoadedModel(model, meta, "sha"), device="cuda", compile="never")  # "auto": bfloat16 there
    assert fast.dtype == torch.bfloat16
    assert (fast.maps(images).cpu() - on_cpu).abs().max() <= 0.05 * on_cpu.abs().max()


@pytest.mark.gpu
@pytest.mark.parametrize("priors", [False, True])
def test_on_a_gpu_peaks_and_priors_run_there_and_give_the_cpus_points(peak_finder_calls, priors):
    # The maps of the two prior tests above at once: keypoint 2 highest on a decoy off the animal,
    # keypoint 1 highest on the wrong paw.
    animal = torch.tensor([[[75.0, 60.0], [88.0, 54.0], [91.0, 69.0], [70.0, 71.0]]])  # (1, 4, 2) image pixels
    maps, _ = confidence_maps(animal, (40, 60), 4, 6.0)  # (1, 4, 40, 60)
    decoy, _ = confidence_maps(torch.tensor([[[226.0, 151.0]]]), (40, 60), 4, 6.0)
    maps[0, 2] = torch.maximum(0.9 * maps[0, 2], decoy[0, 0])
    meta = ModelMeta("test", {}, tuple("abcd"), (160, 240), 1, (0.0,), (1.0,), 4, extent_px=24.0)
    images = np.zeros((3, 160, 240, 1), dtype=np.uint8)
    on_cpu = Predictor(LoadedModel(FixedMapsModel(maps), meta, "sha"), priors=priors).predict(images)
    peak_finder_calls.clear()
    gpu = Predictor(LoadedModel(FixedMapsModel(maps), meta, "sha"), device="cuda", compile="never", priors=priors)
    on_gpu = gpu.predict(images)
    assert gpu.model.maps.is_cuda and set(peak_finder_calls) == {("triton", "cuda")}
    np.testing.assert_allclose(on_gpu, on_cpu, atol=1e-4)
    assert np.allclose(on_gpu[:, 2, :2], animal[0, 2].tolist() if priors else [226.0, 151.0], atol=0.05)
