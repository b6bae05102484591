"""Training configuration: typed, frozen dataclasses parsed once at the edge.

A YAML config file (`posecore train --config`) has two sections, both optional:

    model:
      architecture: densenet_lite
      hyperparameters: {growth_rate: 32, n_stacks: 2}
    train:
      max_epochs: 100
      batch_size: 8
      ...

Unknown keys and wrongly typed values are errors naming the key; nothing falls back silently.

The `train` section is flat: its keys are `TrainConfig`'s fields. The augmentation keys are
declared and checked once, in `AugmentationSettings`, which both `TrainConfig` and
`Augmentation` (what `posecore.train.augment` draws from) extend; `TrainConfig.augmentation`
builds the one `Augmentation` a run uses, and `posecore.train.module.PoseModule` takes the
decided `TrainConfig` whole. This module imports neither torch nor Lightning.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import yaml

from posecore.errors import InputError
from posecore.models.registry import GRAPH_MAPS, check_hyperparameters

Auto = Literal["auto"]
"""A setting that `posecore.train.auto` decides from the labels when the config leaves it "auto"."""
Accelerator = Literal["auto", "cpu", "gpu"]
Precision = Literal["auto", "32-true", "bf16-mixed", "16-mixed"]
LRSchedule = Literal["cosine", "plateau", "none"]


@dataclass(frozen=True)
class AugmentationSettings:
    """The `train` section's augmentation keys, with their defaults, declared and checked here once.

    `TrainConfig` is these and the rest of the section; `Augmentation` is these and the dataset's
    swap pairs. Every magnitude is the largest drawn (uniformly); the defaults are the
    augmentation that reached the accuracy goals on the real datasets (docs/training.md).

    Attributes:
        flip: flip frames horizontally with probability 1/2, swapping the dataset's left/right
            keypoint pairs; "auto": on unless a keypoint named as one side of the animal has no
            swap pair, or the labels show an animal that always faces one way
            (`posecore.train.auto.decide_flip`), decided before training.
        flip_vertical: flip frames vertically with probability 1/2 (a frame mirrored by exactly
            one of the two flips swaps its left/right pairs).
        translation_px: shift frames by [-t, t] pixels, independently in x and y.
        rotation_deg: rotate frames by an angle in [-r, r] degrees about their centre.
        scale: zoom frames by a factor in [1 - s, 1 + s] about their centre (0 <= s < 1).
        brightness: add [-b, b] x 255 to every channel.
        contrast: scale pixel values about the frame's mean by [1 - c, 1 + c] (0 <= c < 1).
        noise_std: add Gaussian noise of standard deviation in [0, n] x 255.
        blur_sigma_px: blur with a Gaussian of standard deviation in [0, s] pixels.
    """

    flip: bool | Auto = "auto"
    flip_vertical: bool = False
    translation_px: float = 16.0
    rotation_deg: float = 15.0
    scale: float = 0.1
    brightness: float = 0.1
    contrast: float = 0.2
    noise_std: float = 0.0
    blur_sigma_px: float = 0.0

    def __post_init__(self) -> None:
        for name in ("rotation_deg", "scale", "translation_px", "brightness", "contrast", "noise_std", "blur_sigma_px"):
            if getattr(self, name) < 0:
                raise ValueError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("scale", "contrast"):
            if getattr(self, name) >= 1:
                raise ValueError(f"train.{name} must be < 1, got {getattr(self, name)}")


AUGMENTATION_KEYS = tuple(f.name for f in fields(AugmentationSettings))
"""The `train` keys that `AugmentationSettings` declares."""


@dataclass(frozen=True)
class Augmentation(AugmentationSettings):
    """Random transforms of training frames (`posecore.train.augment.augment_batch`).

    `TrainConfig.augmentation` builds the one a run uses; `NO_AUGMENTATION` transforms nothing.

    Attributes:
        swap_pairs: (left, right) keypoint index pairs that exchange under one flip (the dataset's).
    """

    swap_pairs: tuple[tuple[int, int], ...] = ()

    @property
    def geometric(self) -> bool:
        """Whether any transform moves pixels."""
        moves = (self.rotation_deg, self.scale, self.translation_px)
        return bool(self.flip) or self.flip_vertical or any(magnitude > 0 for magnitude in moves)

    @property
    def photometric(self) -> bool:
        """Whether any transform changes pixel values."""
        return self.brightness > 0 or self.contrast > 0 or self.noise_std > 0 or self.blur_sigma_px > 0

    @property
    def active(self) -> bool:
        """Whether any transform is on."""
        return self.geometric or self.photometric


NO_AUGMENTATION = Augmentation(
    flip=False, translation_px=0.0, rotation_deg=0.0, scale=0.0, brightness=0.0, contrast=0.0
)
"""An augmentation that transforms nothing (`dataclasses.replace` it to turn transforms on)."""


@dataclass(frozen=True)
class TrainConfig(AugmentationSettings):
    """How to train: the `train` section (its augmentation keys: `AugmentationSettings`).

    The defaults are what trains a good model on labels posecore has never seen (docs/training.md):
    a time budget with the learning rate's cosine schedule ending at it, the augmentation that
    reached the accuracy goals on the real datasets, and crops and flips decided from the
    labels ("auto", `posecore.train.auto`). A number or true/false overrides each "auto".

    Attributes:
        max_epochs: passes over the training split; "auto": as many as max_minutes holds,
            the cosine schedule following the clock (a run then does not repeat exactly: the
            training summary says how many epochs it held, to write here for a run that does).
        batch_size: frames per optimisation step.
        learning_rate: Adam's initial learning rate.
        sigma_px: standard deviation of the target Gaussians, in image pixels.
        seed: seeds weights, shuffling and augmentation (lightning.seed_everything).
        accelerator: "auto" (a GPU when there is one), "cpu" or "gpu".
        precision: "auto" (bf16-mixed on a GPU that has bf16, else 16-mixed; on the CPU
            bf16-mixed where it has AMX matrix units, else 32-true), or one of Lightning's;
            16-mixed is for GPUs only. Validation on the CPU runs in float32, as inference does.
        val_every_n_epochs: validate (and checkpoint) every this many epochs.
        lr_schedule: "cosine" (to 0 over max_epochs, or over max_minutes when the time limit
            comes first), "plateau" (x0.2 after 10 validations without a better val/loss) or
            "none".
        posture_graph: also train DeepPoseKit's posture-graph maps, one per skeleton edge of the
            dataset (the exported model outputs them after the keypoint maps).
        early_stopping_patience: stop after this many validations without a better val/rmse_px
            (0: never stop early).
        devices: GPUs to train on (more than 1: DDP); 1 on CPU.
        init_from: an exported model (model.pt) whose weights start training, e.g. the previous
            round's model when refining; its architecture and keypoints must match ("": none).
        num_workers: DataLoader worker processes (0: load in the main process).
        crop_size: train on square crops of this many pixels, each around a randomly chosen
            labeled keypoint (after augmentation), instead of whole frames; validation and
            inference still see whole frames (the models are fully convolutional). Much faster
            on large frames where the animal is small (0: whole frames); "auto": from the
            labels' extent against the frame size (`posecore.train.auto.decide_crop`).
        crop_background: with crop_size, the fraction of crops placed anywhere in the frame
            instead, so that the model also learns that the far background holds no keypoint
            (0 to 1). With none (0), models trained on crops of open-field frames fired on the far
            arena at inference.
        crop_until: with crop_size, the fraction of the run trained on crops (by epochs, or by
            time with max_minutes, as the cosine schedule counts it); the rest trains on whole
            frames, where the model sees every keypoint at once and learns which is which
            (0 to 1; 1: crops throughout); "auto": 1 when a crop holds the animal, else 0.6.
        max_minutes: stop training after this many minutes of wall time, keeping the best
            checkpoint so far (0: no limit, which needs a number of max_epochs). A run that
            finishes its max_epochs within the limit (or falls less than 5% of the run behind that
            pace) repeats exactly with its seed; one that the limit cuts follows the clock, and
            does not.
        peak_weight: weight of the target peaks in the loss: each map cell's squared error
            counts 1 + peak_weight x its target value. Keypoint maps are nearly all background,
            and with plain MSE (0) a model first learns flat maps and stays there for many
            epochs (on the real datasets, most of a 30-minute CPU budget); a weight of about 20
            lets the peaks pull from the start.
    """

    max_epochs: int | Auto = "auto"
    batch_size: int = 8
    learning_rate: float = 1e-3
    sigma_px: float = 5.0
    seed: int = 0
    accelerator: Accelerator = "auto"
    precision: Precision = "auto"
    val_every_n_epochs: int = 1
    lr_schedule: LRSchedule = "cosine"
    posture_graph: bool = False
    early_stopping_patience: int = 0
    devices: int = 1
    init_from: str = ""
    num_workers: int = 0
    crop_size: int | Auto = "auto"
    crop_background: float = 0.25
    crop_until: float | Auto = "auto"
    max_minutes: float = 30.0
    peak_weight: float = 20.0

    def __post_init__(self) -> None:
        _check_types(self, "train")
        for name in ("max_epochs", "batch_size", "val_every_n_epochs"):
            if getattr(self, name) != "auto" and getattr(self, name) < 1:
                raise ValueError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("learning_rate", "sigma_px"):
            if getattr(self, name) <= 0:
                raise ValueError(f"train.{name} must be positive, got {getattr(self, name)}")
        if self.max_epochs == "auto" and not self.max_minutes > 0:
            raise ValueError(
                "train.max_epochs 'auto' trains for train.max_minutes, which is 0: set max_minutes or a number of "
                "max_epochs"
            )
        if self.max_epochs != "auto" and self.val_every_n_epochs > self.max_epochs:
            raise ValueError(
                f"train.val_every_n_epochs ({self.val_every_n_epochs}) exceeds train.max_epochs ({self.max_epochs}): "
                "no validation would run"
            )
        super().__post_init__()  # the augmentation keys' checks
        for name in ("early_stopping_patience", "num_workers", "crop_size", "max_minutes", "peak_weight"):
            if getattr(self, name) != "auto" and getattr(self, name) < 0:
                raise ValueError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("crop_background", "crop_until"):
            if getattr(self, name) != "auto" and not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"train.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.devices < 1:
            raise ValueError(f"train.devices must be >= 1, got {self.devices}")

    def augmentation(self, swap_pairs: Sequence[Sequence[int]] = ()) -> Augmentation:
        """The augmentation these keys describe, flipping the dataset's (left, right) keypoint index pairs."""
        values = {name: getattr(self, name) for name in AUGMENTATION_KEYS}
        return Augmentation(**values, swap_pairs=tuple((int(left), int(right)) for left, right in swap_pairs))

    @property
    def decided(self) -> bool:
        """Whether no setting but max_epochs (the time budget) is left "auto" (`posecore.train.auto.resolve_auto`)."""
        return "auto" not in (self.flip, self.crop_size, self.crop_until)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str | Path = "<config>") -> TrainConfig:
        """Parse a mapping; an unknown key or a bad value is an InputError naming it."""
        return _from_dict(cls, data, source, "train")


@dataclass(frozen=True)
class ModelConfig:
    """Which model to train.

    Attributes:
        architecture: a key of posecore.models.registry.MODELS.
        hyperparameters: constructor arguments of that model (besides n_keypoints and
            in_channels); the model's defaults fill the rest.
    """

    architecture: str = "densenet_lite"
    hyperparameters: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.hyperparameters, Mapping):
            raise ValueError(f"model.hyperparameters must be a mapping, got {self.hyperparameters!r}")
        if not isinstance(self.architecture, str):
            raise ValueError(f"model.architecture must be a string, got {self.architecture!r}")
        check_hyperparameters(self.architecture, self.hyperparameters)
        if GRAPH_MAPS in self.hyperparameters:
            raise ValueError(
                f"hyperparameter {GRAPH_MAPS!r} is set from the dataset's skeleton: use train.posture_graph instead"
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str | Path = "<config>") -> ModelConfig:
        """Parse a mapping; an unknown key, architecture or hyperparameter is an InputError naming it."""
        return _from_dict(cls, data, source, "model")


def load_config(path: str | Path) -> tuple[ModelConfig, TrainConfig]:
    """Read a YAML config file with optional sections `model` and `train`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "config file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise InputError(path, f"not valid YAML: {error}") from error
    if not isinstance(data, Mapping):
        raise InputError(path, "the config must be a mapping with sections 'model' and 'train'")
    unknown = sorted(set(data) - {"model", "train"})
    if unknown:
        raise InputError(path, "unknown section (known: model, train)", where=f"key {unknown[0]}")
    return ModelConfig.from_dict(data.get("model") or {}, path), TrainConfig.from_dict(data.get("train") or {}, path)


def _from_dict(cls: type, data: Mapping[str, Any], source: str | Path, section: str) -> Any:
    if not isinstance(data, Mapping):
        raise InputError(source, f"section {section!r} must be a mapping", where=f"key {section}")
    known = {f.name for f in fields(cls)}
    for key in data:
        if key not in known:
            raise InputError(source, f"unknown key; known: {', '.join(sorted(known))}", where=f"key {section}.{key}")
    try:
        return cls(**data)
    except (TypeError, ValueError) as error:
        message = str(error)
        keys = list(data)
        if isinstance(data.get("hyperparameters"), Mapping):
            keys = [f"hyperparameters.{k}" for k in data["hyperparameters"]] + keys
        key = next(
            (
                k
                for k in keys
                if f"{section}.{k}" in message or repr(k.split(".")[-1]) in message or f" {k} " in message
            ),
            None,
        )
        raise InputError(source, message, where=f"key {section}.{key}" if key else f"key {section}") from error


def _check_types(config: Any, section: str) -> None:
    """Raise ValueError naming the first field whose value does not match its annotation."""
    hints = typing.get_type_hints(type(config))
    for f in fields(config):
        value, expected = getattr(config, f.name), hints[f.name]
        options = typing.get_args(expected) if typing.get_origin(expected) is typing.Union else (expected,)
        words = [word for option in options for word in _describe(option)]
        if any(_matches(value, option) for option in options) or not all(map(_describe, options)):
            continue
        if all(typing.get_origin(option) is Literal for option in options):
            wanted = f"one of {', '.join(words)}"
        else:
            wanted = " or ".join([", ".join(words[:-1]), words[-1]]) if len(words) > 1 else words[0]
        raise ValueError(f"{section}.{f.name} must be {wanted}, got {value!r}")


def _matches(value: Any, expected: Any) -> bool:
    """Whether a config value has the annotated type (bool is not a number here)."""
    if typing.get_origin(expected) is Literal:
        return value in typing.get_args(expected)
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is bool:
        return isinstance(value, bool)
    return False


def _describe(expected: Any) -> list[str]:
    """The values an annotation allows, in words for an error message (empty: a type not checked here)."""
    if typing.get_origin(expected) is Literal:
        return [repr(value) for value in typing.get_args(expected)]
    return {float: ["a number"], int: ["an integer"], bool: ["true", "false"]}.get(expected, [])
