"""The exported model: one file that inference loads without any training code (docs/design.md).

The file is `torch.save` of a dict of plain types (str, int, float, bool, lists, dicts) and
a state_dict of tensors, so it loads with `torch.load(weights_only=True)`:

    format            "posecore-model"
    format_version    int (FORMAT_VERSION)
    posecore_version  str, the posecore that wrote it
    architecture      str, a key of posecore.models.registry.MODELS
    hyperparameters   dict, the model's constructor arguments besides n_keypoints, in_channels
    keypoint_names    list[str] (K), the order of the model's output maps
    skeleton          list[[int, int]], posture-graph edges (keypoint indices)
    swap_pairs        list[[int, int]], left/right pairs that swap under a horizontal flip
    input_size        [H, W], the image size it was trained on
    in_channels       int, C
    mean, std         list[float] (C), normalisation for uint8 0..255 input: (x - mean) / std
    output_stride     int, image pixels per confidence-map cell
    dataset_hash      str, content hash of the training dataset ("" when unknown)
    extent_px         float, the longest distance between two keypoints of one training frame
                      (`posecore.ops.single_animal`); 0.0, or absent in older files: unknown
    offset_ranges     list[[int, int, float, float, float, float]], per pair of keypoints i < j
                      labeled together often enough, the lowest and highest x_i - x_j and
                      y_i - y_j allowed: the training labels' range, widened for the frames
                      that showed it (`posecore.ops.layout`); [], or absent in older files:
                      unknown
    state_dict        dict[str, Tensor], the weights

Format 1 (posecore before the published networks were made layer-for-layer faithful) named
posecore's own lighter networks after the originals. A format-1 file still loads, and predicts
exactly as before: `FORMAT_1` says what each of its architectures is called now, and sets the
hyperparameters whose defaults changed (tests/models/test_export.py loads files saved then).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from posecore import __version__
from posecore.errors import InputError
from posecore.io.atomic import atomic_path
from posecore.models.registry import build_model

FORMAT = "posecore-model"
FORMAT_VERSION = 2
# Format-1 architecture -> (its name now, the defaults it had where they changed, values it must take).
FORMAT_1: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "stacked_densenet": ("densenet_lite", {}, {}),
    "stacked_hourglass": ("hourglass_lite", {}, {}),
    "leap": ("leap", {}, {"output_layer": "conv"}),
    "resnet_deconv": ("resnet_deconv", {"n_deconv": 2, "deconv_channels": 256}, {"output_layer": "conv"}),
}


@dataclass(frozen=True)
class ModelMeta:
    """Everything about an exported model except its weights.

    Attributes:
        architecture: registry name of the model.
        hyperparameters: the model's constructor arguments besides n_keypoints and in_channels.
        keypoint_names: the K names, in the order of the output maps.
        input_size: (H, W) of the training images.
        in_channels: C, image channels.
        mean: per-channel mean (C) in uint8 units (0..255).
        std: per-channel standard deviation (C) in uint8 units.
        output_stride: image pixels per map cell.
        skeleton: posture-graph edges as pairs of keypoint indices.
        swap_pairs: left/right keypoint index pairs.
        dataset_hash: content hash of the training dataset, "" when unknown.
        extent_px: the animal's largest extent in the training labels, the longest distance
            between two keypoints of one frame (`posecore.ops.single_animal.label_extent`), in
            image pixels; 0.0 when unknown, which turns the single-animal prior at decoding off.
        offset_ranges: rows (i, j, dx_min, dx_max, dy_min, dy_max) in image pixels, the range
            each pair's offset may take, from the training labels
            (`posecore.ops.layout.offset_ranges`); () when unknown, which turns the layout prior
            at decoding off.
        format_version: version of this file format.
        posecore_version: the posecore version that wrote the file.
    """

    architecture: str
    hyperparameters: dict[str, Any]
    keypoint_names: tuple[str, ...]
    input_size: tuple[int, int]
    in_channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    output_stride: int
    skeleton: tuple[tuple[int, int], ...] = ()
    swap_pairs: tuple[tuple[int, int], ...] = ()
    dataset_hash: str = ""
    extent_px: float = 0.0
    offset_ranges: tuple[tuple[int, int, float, float, float, float], ...] = ()
    format_version: int = FORMAT_VERSION
    posecore_version: str = field(default=__version__)

    def __post_init__(self) -> None:
        if len(self.mean) != self.in_channels or len(self.std) != self.in_channels:
            raise ValueError(f"mean and std need one value per channel ({self.in_channels})")
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std must be positive, got {self.std}")

    @property
    def n_keypoints(self) -> int:
        """K, the number of keypoints."""
        return len(self.keypoint_names)

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (lists, not tuples): what the file and trajectory metadata hold."""
        data = asdict(self)
        for key in ("keypoint_names", "input_size", "mean", "std"):
            data[key] = list(data[key])
        data["skeleton"] = [list(edge) for edge in self.skeleton]
        data["swap_pairs"] = [list(pair) for pair in self.swap_pairs]
        data["offset_ranges"] = [list(row) for row in self.offset_ranges]
        data["hyperparameters"] = dict(self.hyperparameters)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelMeta:
        """Inverse of `to_dict` (unknown keys are an error)."""
        return cls(
            architecture=str(data["architecture"]),
            hyperparameters=dict(data["hyperparameters"]),
            keypoint_names=tuple(str(n) for n in data["keypoint_names"]),
            input_size=(int(data["input_size"][0]), int(data["input_size"][1])),
            in_channels=int(data["in_channels"]),
            mean=tuple(float(v) for v in data["mean"]),
            std=tuple(float(v) for v in data["std"]),
            output_stride=int(data["output_stride"]),
            skeleton=tuple((int(a), int(b)) for a, b in data.get("skeleton", ())),
            swap_pairs=tuple((int(a), int(b)) for a, b in data.get("swap_pairs", ())),
            dataset_hash=str(data.get("dataset_hash", "")),
            extent_px=float(data.get("extent_px", 0.0)),
            offset_ranges=tuple(
                (int(i), int(j), *(float(v) for v in limits)) for i, j, *limits in data.get("offset_ranges", ())
            ),
            format_version=int(data["format_version"]),
            posecore_version=str(data["posecore_version"]),
        )


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A model read from an exported file.

    Attributes:
        model: the network, in eval mode, on the device it was loaded to.
        meta: its metadata.
        sha256: hex digest of the file's bytes (identifies the model in outputs).
        path: the file it was read from.
    """

    model: nn.Module
    meta: ModelMeta
    sha256: str
    path: str = ""


def save_model(path: str | Path, model: nn.Module, meta: ModelMeta) -> str:
    """Write `model`'s weights and `meta` to one file atomically; return the file's sha256.

    Args:
        path: destination (its folder is created).
        model: a model built by posecore.models.registry.build_model(meta.architecture, ...).
        meta: its metadata; its output_stride must be the model's.
    """
    path = Path(path)
    payload = model_payload(model, meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def model_payload(model: nn.Module, meta: ModelMeta) -> dict[str, Any]:
    """What an exported model file holds (the module docstring's dict), for `torch.save`.

    Raises:
        ValueError: `meta.output_stride` is not the model's.
    """
    stride = getattr(model, "output_stride", None)
    if stride != meta.output_stride:
        raise ValueError(f"meta.output_stride {meta.output_stride} differs from the model's {stride}")
    payload = {"format": FORMAT, **meta.to_dict(), "format_version": FORMAT_VERSION}
    payload["state_dict"] = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    return payload


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Read an exported model: the network (eval mode, on `device`), its metadata and file hash.

    Raises:
        InputError: the file is missing, not an exported posecore model, of another format
            version, or its weights do not fit its architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "exported model not found")
    data = path.read_bytes()
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:
        raise InputError(path, f"not a posecore exported model ({_load_failure(error)})") from error
    other = str(payload.get("format", "")) if isinstance(payload, dict) else ""
    if other.startswith("posecore-") and other != FORMAT:
        raise InputError(path, f"a {other!r} file, not one model: load it with its own reader")
    return model_from_payload(payload, path, device, hashlib.sha256(data).hexdigest())


def model_from_payload(payload: Any, path: str | Path, device: str | torch.device, sha256: str) -> LoadedModel:
    """The model an exported payload holds (`load_model`); `path` and `sha256` identify it in messages and outputs."""
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(path, "not a posecore exported model (no 'format': 'posecore-model')")
    version = payload.get("format_version")
    if version not in (1, FORMAT_VERSION):
        raise InputError(path, f"model format version {version}, this posecore reads 1 to {FORMAT_VERSION}")
    fields = {k: v for k, v in payload.items() if k not in ("format", "state_dict")}
    try:
        meta = ModelMeta.from_dict(_from_format_1(fields) if version == 1 else fields)
    except (KeyError, TypeError, ValueError) as error:
        raise InputError(path, f"bad model metadata: {error}", where=f"key {error}") from error
    try:
        model = build_model(meta.architecture, meta.n_keypoints, meta.in_channels, **meta.hyperparameters)
        model.load_state_dict(payload["state_dict"], strict=True)
    except (KeyError, RuntimeError, ValueError) as error:
        raise InputError(path, f"weights do not fit architecture {meta.architecture!r}: {error}") from error
    model.to(device).eval()
    return LoadedModel(model=model, meta=meta, sha256=sha256, path=str(path))


def _load_failure(error: Exception) -> str:
    """Why torch could not read a file, in one line, without torch's advice to load untrusted pickles."""
    text = str(error)
    if "weights_only" in text or "Weights only load failed" in text:
        return f"{type(error).__name__}: not a file of tensors and plain values, the only kind posecore loads"
    first = text.strip().splitlines()[0] if text.strip() else ""
    return f"{type(error).__name__}: {first}"


def _from_format_1(fields: dict[str, Any]) -> dict[str, Any]:
    """A format-1 file's metadata in today's names: the same network, under the name and settings that build it now."""
    architecture = fields.get("architecture")
    if architecture not in FORMAT_1:
        return fields
    name, old_defaults, fixed = FORMAT_1[architecture]
    hyperparameters = {**old_defaults, **dict(fields.get("hyperparameters", {})), **fixed}
    return {**fields, "architecture": name, "hyperparameters": hyperparameters}
