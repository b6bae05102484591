import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from posecore.errors import InputError
from posecore.models import MODELS, ModelMeta, build_model, load_model, save_model
from posecore.models.export import FORMAT_VERSION
from posecore.models.registry import hyperparameter_defaults

SMALL = {
    "stacked_densenet": {"growth_rate": 8, "n_transitions": 2, "n_stacks": 2},
    "stacked_hourglass": {"filters": 8, "n_transitions": 1, "n_stacks": 2, "n_graph_maps": 2},
    "leap": {"filters": 4, "batch_norm": True},
    "resnet_deconv": {"depth": 18, "deconv_channels": 8, "n_deconv": 1},
    "densenet_lite": {"growth_rate": 8, "n_transitions": 2},
    "hourglass_lite": {"n_features": 8, "n_transitions": 1, "n_graph_maps": 2},
    "colour_readout": {},
}
# What the format-1 files of tests/models/data/format-v1 hold now: (architecture, hyperparameters that changed).
FORMAT_1_NOW = {
    "stacked_densenet": ("densenet_lite", {}),
    "stacked_hourglass": ("hourglass_lite", {}),
    "leap": ("leap", {"output_layer": "conv"}),
    "resnet_deconv": ("resnet_deconv", {"output_layer": "conv"}),
}


def _meta(name: str, hyperparameters: dict, output_stride: int = 4) -> ModelMeta:
    return ModelMeta(
        architecture=name,
        hyperparameters={**hyperparameter_defaults(name), **hyperparameters},
        keypoint_names=("snout", "left_ear", "right_ear"),
        input_size=(48, 64),
        in_channels=3,
        mean=(100.0, 110.0, 120.0),
        std=(50.0, 51.0, 52.0),
        output_stride=output_stride,
        skeleton=((0, 1), (0, 2)),
        swap_pairs=((1, 2),),
        dataset_hash="abc",
        extent_px=37.5,
        offset_ranges=((0, 1, -12.5, 3.0, 8.0, 20.25), (1, 2, -40.0, -20.0, -5.0, 5.0)),
    )


@pytest.mark.parametrize("name", sorted(MODELS))
def test_round_trip_gives_identical_outputs(tmp_path, name):
    torch.manual_seed(0)
    model = build_model(name, 3, 3, **SMALL[name])
    model.train()
    model(torch.randn(4, 3, 48, 64))  # move BatchNorm running statistics off their initial values
    model.eval()
    meta = _meta(name, SMALL[name], model.output_stride)
    digest = save_model(tmp_path / "model.pt", model, meta)

    loaded = load_model(tmp_path / "model.pt")
    assert loaded.sha256 == digest == hashlib.sha256((tmp_path / "model.pt").read_bytes()).hexdigest()
    assert loaded.meta == meta
    assert not loaded.model.training
    x = torch.randn(2, 3, 48, 64)
    with torch.no_grad():
        for expected, actual in zip(model(x), loaded.model(x), strict=True):
            assert torch.equal(expected, actual)


def test_file_is_plain_data_loadable_with_weights_only(tmp_path):
    model = build_model("stacked_densenet", 3, 3, **SMALL["stacked_densenet"])
    save_model(tmp_path / "model.pt", model, _meta("stacked_densenet", SMALL["stacked_densenet"]))
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    assert payload["format"] == "posecore-model" and payload["format_version"] == FORMAT_VERSION == 2
    assert payload["keypoint_names"] == ["snout", "left_ear", "right_ear"]
    assert payload["input_size"] == [48, 64] and payload["output_stride"] == 4
    assert payload["mean"] == [100.0, 110.0, 120.0] and payload["swap_pairs"] == [[1, 2]]
    assert payload["architecture"] == "stacked_densenet" and payload["hyperparameters"]["growth_rate"] == 8
    assert set(payload["state_dict"]) == set(model.state_dict())
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary left behind


def test_a_file_from_before_the_priors_loads_with_them_off(tmp_path):
    model = build_model("stacked_densenet", 3, 3, **SMALL["stacked_densenet"])
    save_model(tmp_path / "model.pt", model, _meta("stacked_densenet", SMALL["stacked_densenet"]))
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    assert payload.pop("extent_px") == 37.5
    assert payload.pop("offset_ranges") == [[0, 1, -12.5, 3.0, 8.0, 20.25], [1, 2, -40.0, -20.0, -5.0, 5.0]]
    torch.save(payload, tmp_path / "old.pt")
    meta = load_model(tmp_path / "old.pt").meta
    assert meta.extent_px == 0.0 and meta.offset_ranges == ()


def test_loading_imports_no_training_code(tmp_path):
    model = build_model("stacked_densenet", 3, 3, **SMALL["stacked_densenet"])
    save_model(tmp_path / "model.pt", model, _meta("stacked_densenet", SMALL["stacked_densenet"]))
    code = (
        "import sys; from posecore.models import load_model; from posecore.predict import Predictor; "
        f"Predictor(load_model({str(tmp_path / 'model.pt')!r})); "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('pytorch_lightning', 'lightning', 'lightning_fabric')"
        " or m.startswith('posecore.train')]; print(bad); sys.exit(1 if bad else 0)"
    )
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_missing_or_foreign_file_is_an_input_error_naming_it(tmp_path):
    with pytest.raises(InputError, match=r"nothing\.pt: exported model not found"):
        load_model(tmp_path / "nothing.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(InputError, match=r"other\.pt: not a posecore exported model"):
        load_model(tmp_path / "other.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(InputError, match=r"text\.pt: not a posecore exported model"):
        load_model(tmp_path / "text.pt")


def test_newer_format_version_is_refused(tmp_path):
    model = build_model("stacked_densenet", 3, 3, **SMALL["stacked_densenet"])
    save_model(tmp_path / "model.pt", model, _meta("stacked_densenet", SMALL["stacked_densenet"]))
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    payload["format_version"] = 99
    torch.save(payload, tmp_path / "future.pt")
    with pytest.raises(InputError, match=r"future\.pt: model format version 99"):
        load_model(tmp_path / "future.pt")


def test_weights_that_do_not_fit_the_architecture_are_refused(tmp_path):
    model = build_model("stacked_densenet", 3, 3, **SMALL["stacked_densenet"])
    meta = _meta("stacked_densenet", {**SMALL["stacked_densenet"], "growth_rate": 12})
    save_model(tmp_path / "model.pt", model, meta)
    with pytest.raises(InputError, match=r"model\.pt: weights do not fit architecture 'stacked_densenet'"):
        load_model(tmp_path / "model.pt")


@pytest.mark.parametrize("name", sorted(FORMAT_1_NOW))
def test_a_format_1_file_loads_and_predicts_exactly_as_before(tmp_path, format_1, name):
    """Files saved by posecore before the faithful networks (tests/models/data/format-v1/make.py) still work.

    Their outputs on a fixed input were recorded by that posecore; the loaded model must give the
    very same numbers, under the network's name now.
    """
    expected = format_1.expected
    path = format_1.folder / f"{name}.pt"
    if name == "resnet_deconv":  # too large to keep: rebuilt from its recorded names, shapes and seed
        path = format_1.resnet_deconv(tmp_path / "resnet_deconv.pt")
    assert torch.load(path, weights_only=True)["format_version"] == 1
    loaded = load_model(path)
    architecture, changed = FORMAT_1_NOW[name]
    assert loaded.meta.architecture == architecture and loaded.meta.format_version == 1
    assert changed.items() <= loaded.meta.hyperparameters.items()
    # The outputs were recorded with torch's 2 threads (make.py on a 2-core machine); the sums of
    # a convolution come out bit for bit the same only with the same split of the work.
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with torch.no_grad():
            outputs = loaded.model(expected["input"][name])
    finally:
        torch.set_num_threads(threads)
    assert len(outputs) == len(expected["outputs"][name])
    for actual, recorded in zip(outputs, expected["outputs"][name], strict=True):
        assert torch.equal(actual, recorded)
    # Saved again, it is a file of today's format that builds the same network.
    save_model(tmp_path / "again.pt", loaded.model, loaded.meta)
    again = load_model(tmp_path / "again.pt")
    assert again.meta.format_version == FORMAT_VERSION and again.meta.architecture == architecture
    torch.set_num_threads(2)
    try:
        with torch.no_grad():
            assert torch.equal(again.model(expected["input"][name])[-1], outputs[-1])
    finally:
        torch.set_num_threads(threads)


def test_a_format_1_resnet_that_left_out_its_defaults_gets_those_of_its_time(tmp_path, format_1):
    path = format_1.resnet_deconv(tmp_path / "bare.pt", {"depth": 18})  # n_deconv 2, 256 channels: format 1's
    payload = torch.load(path, weights_only=True)
    big = build_model("resnet_deconv", 2, 3, depth=18, n_deconv=2, output_layer="conv")
    torch.save({**payload, "state_dict": big.state_dict()}, path)
    hyperparameters = load_model(path).meta.hyperparameters
    assert hyperparameters["n_deconv"] == 2 and hyperparameters["deconv_channels"] == 256
    assert hyperparameters["output_layer"] == "conv"
