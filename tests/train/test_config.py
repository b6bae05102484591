import subprocess
import sys
from dataclasses import asdict, fields
from pathlib import Path

import pytest
import yaml

from posecore.errors import InputError
from posecore.train.config import AUGMENTATION_KEYS, Augmentation, ModelConfig, TrainConfig, load_config
from posecore.train.fit import resolve_devices

REPO = Path(__file__).resolve().parents[2]


def test_defaults_and_overrides():
    config = TrainConfig.from_dict({"max_epochs": 5, "learning_rate": 1, "flip": True})
    assert config.max_epochs == 5 and config.learning_rate == 1 and config.flip and config.batch_size == 8


def test_the_shipped_config_the_schema_and_the_dataclass_hold_the_same_defaults():
    shipped = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["train"]
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    properties = schema["properties"]["train"]["properties"]
    defaults = asdict(TrainConfig())
    assert set(properties) == set(defaults), "every training option is in the schema"
    assert {key: spec["default"] for key, spec in properties.items()} == defaults
    assert {key: defaults[key] for key in shipped} == shipped, "config/config.yaml ships the defaults"
    assert TrainConfig.from_dict(shipped) == TrainConfig()


def test_auto_settings_and_their_overrides():
    config = TrainConfig()
    assert (config.max_epochs, config.crop_size, config.crop_until, config.flip) == ("auto",) * 4
    assert config.max_minutes == 30
    explicit = TrainConfig.from_dict({"max_epochs": 60, "crop_size": 0, "crop_until": 1, "flip": False})
    assert (explicit.max_epochs, explicit.crop_size, explicit.crop_until, explicit.flip) == (60, 0, 1, False)
    assert TrainConfig.from_dict({"max_epochs": 5, "max_minutes": 0}).max_minutes == 0
    with pytest.raises(InputError, match=r"\(key train.val_every_n_epochs\): .*exceeds train.max_epochs \(100\)"):
        TrainConfig.from_dict({"val_every_n_epochs": 500, "max_epochs": 100}, "cfg.yaml")


def test_unknown_key_is_an_error_naming_it():
    with pytest.raises(InputError, match=r"cfg.yaml \(key train.epochs\): unknown key"):
        TrainConfig.from_dict({"epochs": 5}, "cfg.yaml")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("max_epochs", "ten", "must be an integer"),
        ("batch_size", 0, "must be >= 1"),
        ("accelerator", "tpu", "must be one of 'auto', 'cpu', 'gpu'"),
        ("flip", "yes", "must be true, false or 'auto'"),
        ("crop_size", True, "must be an integer or 'auto'"),
        ("crop_until", "later", "must be a number or 'auto'"),
        ("max_minutes", 0, "max_epochs 'auto' trains for train.max_minutes, which is 0"),
        ("crop_background", 1.5, r"must be in \[0, 1\]"),
        ("crop_until", -0.1, r"must be in \[0, 1\]"),
        ("peak_weight", -1.0, "must be >= 0"),
    ],
)
def test_bad_values_are_errors_naming_the_key(key, value, message):
    with pytest.raises(InputError, match=rf"cfg.yaml \(key train.{key}\): .*{message}"):
        TrainConfig.from_dict({key: value}, "cfg.yaml")


def test_model_config_checks_the_architecture_and_hyperparameters():
    assert ModelConfig.from_dict({"hyperparameters": {"growth_rate": 16}}).hyperparameters == {"growth_rate": 16}
    with pytest.raises(
        InputError,
        match=r"\(key model.architecture\): .*known: colour_readout, densenet_lite, hourglass_lite, leap, resnet_",
    ):
        ModelConfig.from_dict({"architecture": "unet"}, "cfg.yaml")
    with pytest.raises(InputError, match="no hyperparameter 'depth'"):
        ModelConfig.from_dict({"hyperparameters": {"depth": 3}}, "cfg.yaml")


def test_load_config_reads_both_sections(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("model:\n  hyperparameters: {growth_rate: 8}\ntrain:\n  max_epochs: 3\n  sigma_px: 2.5\n")
    model, train = load_config(path)
    assert model.architecture == "densenet_lite" and model.hyperparameters == {"growth_rate": 8}
    assert train.max_epochs == 3 and train.sigma_px == 2.5
    path.write_text("optimizer: {}\n")
    with pytest.raises(InputError, match=r"config.yaml \(key optimizer\): unknown section"):
        load_config(path)


def test_augmentation_and_training_options_are_checked():
    config = TrainConfig.from_dict({"flip_vertical": True, "scale": 0.2, "blur_sigma_px": 1, "posture_graph": True})
    assert config.flip_vertical and config.scale == 0.2 and config.posture_graph and config.early_stopping_patience == 0
    with pytest.raises(InputError, match=r"\(key train.scale\): train.scale must be < 1"):
        TrainConfig.from_dict({"scale": 1.5}, "cfg.yaml")
    with pytest.raises(InputError, match=r"\(key train.noise_std\): train.noise_std must be a number"):
        TrainConfig.from_dict({"noise_std": "low"}, "cfg.yaml")


def test_every_registered_architecture_is_configurable_and_checked():
    config = ModelConfig.from_dict({"architecture": "resnet_deconv", "hyperparameters": {"depth": 18}})
    assert config.hyperparameters == {"depth": 18}
    with pytest.raises(
        InputError, match=r"\(key model.hyperparameters.depth\): .*'depth' of model 'resnet_deconv' must"
    ):
        ModelConfig.from_dict({"architecture": "resnet_deconv", "hyperparameters": {"depth": "50"}}, "cfg.yaml")
    with pytest.raises(InputError, match=r"use train\.posture_graph"):
        ModelConfig.from_dict({"architecture": "leap", "hyperparameters": {"n_graph_maps": 2}}, "cfg.yaml")


def test_checking_a_config_imports_neither_torch_nor_lightning():
    """The workflow checks the config at load; importing torch there costs seconds per Snakemake start."""
    code = (
        "import sys; from posecore.train.config import ModelConfig, TrainConfig; "
        "ModelConfig.from_dict({'architecture': 'resnet_deconv', 'hyperparameters': {'depth': 18}}); "
        "TrainConfig.from_dict({}); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'lightning', 'pytorch_lightning')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("amx", [True, False])
def test_cpu_training_takes_bf16_mixed_precision_only_where_the_cpu_has_matrix_units(monkeypatch, amx):
    monkeypatch.setattr("posecore.train.fit.cpu_has_bf16_matrix_units", lambda: amx)
    accelerator, precision, devices = resolve_devices(TrainConfig(accelerator="cpu"))
    assert (accelerator, precision, devices) == ("cpu", "bf16-mixed" if amx else "32-true", 1)
    assert resolve_devices(TrainConfig(accelerator="cpu", precision="bf16-mixed"))[1] == "bf16-mixed"
    with pytest.raises(ValueError, match="16-mixed"):
        resolve_devices(TrainConfig(accelerator="cpu", precision="16-mixed"))


def test_the_augmentation_keys_build_the_one_augmentation_that_checks_them():
    config = TrainConfig.from_dict({"flip": True, "noise_std": 0.1, "rotation_deg": 0})
    expected = Augmentation(flip=True, rotation_deg=0, noise_std=0.1, swap_pairs=((0, 1),))  # the rest: defaults
    assert config.augmentation([[0, 1]]) == expected
    assert set(AUGMENTATION_KEYS) < {f.name for f in fields(TrainConfig)}, "every augmentation key is a train key"
    assert TrainConfig().augmentation() == Augmentation(), "the same defaults, declared once"
    with pytest.raises(InputError, match=r"\(key train.blur_sigma_px\): train.blur_sigma_px must be >= 0, got -1"):
        TrainConfig.from_dict({"blur_sigma_px": -1}, "cfg.yaml")
