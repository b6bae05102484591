"""Several animals per frame from images: the top-down model file and its predictor.

The model file (`save_topdown`, `load_topdown`) is one `torch.save` dict of plain types, like a
single-animal model's (`posecore.models.export`), that loads with `weights_only=True`:

    format            "posecore-topdown"
    format_version    int (FORMAT_VERSION)
    posecore_version  str
    config            dict, the `TopDownConfig`
    crop_size         int, the instance crops' side in pixels
    centroid          the centroid model's exported payload (`model_payload`)
    instance          the instance model's exported payload

`TopDownPredictor.predict(images)` has the shape of `posecore.predict.Predictor.predict`'s
interface: uint8 (B, H, W, C) frames in, per frame up to `max_animals` detections out
(`Detections`: keypoints (B, N, K, 3) with a validity mask), untracked: detection n of a frame
is its n-th best. `Detections.table` writes them as trajectory rows (`MULTI_ANIMAL_SCHEMA`,
`instance` the detection's index), what an inference shard holds (`detection_rows`, the
shard writer's layout); the tracker (`posecore.multi.tracking.track_video`) joins a video's
shards into identities. `load_any_model` reads either kind of model file, by its format.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from posecore import __version__
from posecore.errors import InputError
from posecore.geometry import map_to_image
from posecore.infer.shards import RowLayout
from posecore.io import trajectories
from posecore.io.atomic import atomic_path
from posecore.models.export import LoadedModel, ModelMeta, load_model, model_from_payload, model_payload
from posecore.multi.topdown import TopDownConfig, crop_at, crop_corners, from_scaled, scale_images, scale_ratio
from posecore.ops.multipeak import find_peaks_multi
from posecore.predict import CompileMode, Precision, Predictor

FORMAT = "posecore-topdown"
FORMAT_VERSION = 1


@dataclass(frozen=True, eq=False)
class TopDownModel:
    """A loaded top-down model.

    Attributes:
        centroid: the model of animals' centres (one keypoint, several peaks).
        instance: the model of one animal's keypoints on a crop.
        config: how animals are found and cropped.
        crop_size: the crops' side in pixels.
        sha256: hex digest of the file's bytes.
        path: the file.
    """

    centroid: LoadedModel
    instance: LoadedModel
    config: TopDownConfig
    crop_size: int
    sha256: str = ""
    path: str = ""

    @property
    def keypoint_names(self) -> tuple[str, ...]:
        """The K keypoints of each animal."""
        return self.instance.meta.keypoint_names

    @property
    def meta(self) -> ModelMeta:
        """The instance model's metadata: each animal's keypoints, skeleton and priors."""
        return self.instance.meta


def save_topdown(
    path: str | Path, centroid: LoadedModel, instance: LoadedModel, config: TopDownConfig, crop_size: int
) -> str:
    """Write a top-down model file atomically (module docstring); return its sha256."""
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "posecore_version": __version__,
        "config": config.to_dict(),
        "crop_size": int(crop_size),
        "centroid": model_payload(centroid.model, centroid.meta),
        "instance": model_payload(instance.model, instance.meta),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def is_topdown(path: str | Path) -> bool:
    """Whether a model file is a top-down model (else a single-animal one, `posecore.models.load_model`).

    The file's tensors are memory-mapped, not read: asking costs next to nothing.
    """
    try:
        payload = torch.load(Path(path), map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return False
    return isinstance(payload, dict) and payload.get("format") == FORMAT


def load_any_model(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel | TopDownModel:
    """A model file of either kind: a top-down model (`load_topdown`) or a single-animal one (`load_model`)."""
    return load_topdown(path, device) if is_topdown(path) else load_model(path, device)


def load_topdown(path: str | Path, device: str | torch.device = "cpu") -> TopDownModel:
    """Read a top-down model file.

    Raises:
        InputError: the file is missing, not a top-down model, of another format version, or
            a model in it is broken (`posecore.models.export.load_model`'s messages).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "top-down model not found")
    data = path.read_bytes()
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:
        raise InputError(path, f"not a posecore model ({type(error).__name__}: {error})") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise InputError(path, f"not a top-down model (format {found!r}, expected {FORMAT!r})")
    if payload.get("format_version") != FORMAT_VERSION:
        raise InputError(path, f"top-down format version {payload.get('format_version')}, this posecore reads 1")
    sha256 = hashlib.sha256(data).hexdigest()
    try:
        config = TopDownConfig(**payload["config"])
    except (KeyError, TypeError, ValueError) as error:
        raise InputError(path, f"bad top-down config: {error}", where="key config") from error
    return TopDownModel(
        centroid=model_from_payload(payload.get("centroid"), f"{path}#centroid", device, sha256),
        instance=model_from_payload(payload.get("instance"), f"{path}#instance", device, sha256),
        config=config,
        crop_size=int(payload.get("crop_size", 0)),
        sha256=sha256,
        path=str(path),
    )


@dataclass(frozen=True)
class Detections:
    """The animals found in a batch of frames, best first, untracked.

    Attributes:
        peaks: float32 (B, N, K, 3) (x, y, score) in frame pixels, NaN in slots without an animal.
        instance_score: float32 (B, N) each animal's confidence (its centroid peak times its
            mean keypoint score), NaN in empty slots.
        valid: bool (B, N) slots holding an animal.
        centres: float32 (B, N, 2) the centroid model's peak of each animal, frame pixels.
    """

    peaks: np.ndarray
    instance_score: np.ndarray
    valid: np.ndarray
    centres: np.ndarray

    def table(self, frames: np.ndarray, times: np.ndarray, keypoint_names: tuple[str, ...]) -> pa.Table:
        """Trajectory rows of these detections (`MULTI_ANIMAL_SCHEMA`, `instance` the detection's index)."""
        return trajectories.instances_table(frames, times, self.peaks, keypoint_names, self.instance_score)


def detection_rows(keypoint_names: tuple[str, ...], max_animals: int) -> RowLayout:
    """The rows of a shard of untracked detections: `max_animals` slots of K keypoints a frame (`Detections.table`)."""
    names = tuple(keypoint_names)
    return RowLayout(
        trajectories.MULTI_ANIMAL_SCHEMA,
        max_animals * len(names),
        lambda frames, times, found: found.table(frames, times, names),
    )


def detect_video(
    predictor: TopDownPredictor, video: str | Path, start: int = 0, stop: int | None = None, batch_size: int = 8
) -> pa.Table:
    """Untracked detections of frames [start, stop) of a video, as trajectory rows (what an inference shard holds).

    Frames are streamed (`posecore.io.video.read_frames`), never the whole video in memory.
    """
    from posecore.io.video import probe, read_frames

    info = probe(video)
    stop = info.n_frames if stop is None else stop
    tables = [
        predictor.predict(batch.images).table(batch.indices, batch.times, predictor.keypoint_names)
        for batch in read_frames(video, start, stop, info=info, batch_size=batch_size)
    ]
    if not tables:
        return trajectories.MULTI_ANIMAL_SCHEMA.empty_table()
    return pa.concat_tables(tables).unify_dictionaries().combine_chunks()


class TopDownPredictor:
    """Animals and their keypoints in uint8 frames, with a loaded top-down model.

    Args:
        model: from `load_topdown`.
        device: where both models run.
        batch_size: frames per centroid pass; crops per instance pass.
        precision: as `posecore.predict.Predictor`'s.
        compile: as `posecore.predict.Predictor`'s.
        priors: decode the instance model's crops with its single-animal priors.
    """

    def __init__(
        self,
        model: TopDownModel,
        device: str | torch.device = "cpu",
        batch_size: int = 16,
        *,
        precision: Precision = "auto",
        compile: CompileMode = "auto",
        priors: bool = True,
    ) -> None:
        self.model = model
        self.config = model.config
        self.crop_size = model.crop_size
        self.centroid = Predictor(
            model.centroid, device, batch_size, precision=precision, compile=compile, priors=False
        )
        self.instance = Predictor(
            model.instance, device, batch_size, precision=precision, compile=compile, priors=priors
        )

    @property
    def keypoint_names(self) -> tuple[str, ...]:
        """The K keypoints of each animal."""
        return self.model.keypoint_names

    @property
    def device(self) -> torch.device:
        """Where both models run."""
        return self.instance.device

    @property
    def batch_size(self) -> int:
        """Frames per centroid pass and crops per instance pass (setting it sets both)."""
        return self.centroid.batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self.centroid.batch_size = self.instance.batch_size = int(value)

    def predict(self, images: np.ndarray | torch.Tensor) -> Detections:
        """Find the animals of each frame and their keypoints.

        Args:
            images: uint8 (B, H, W, C).

        Returns:
            Up to `max_animals` detections per frame, best first.
        """
        frames = np.asarray(images)
        centres, centre_scores = self.find_centres(frames)  # (B, N, 2), (B, N)
        n_frames, n_slots = centre_scores.shape
        k = len(self.keypoint_names)
        peaks = np.full((n_frames, n_slots, k, 3), np.nan, dtype=np.float32)
        which_frame, which_slot = np.nonzero(np.isfinite(centre_scores))
        if len(which_frame):
            corners = crop_corners(centres[which_frame, which_slot], self.crop_size)  # (M, 2)
            for start in range(0, len(which_frame), self.batch_size):
                part = slice(start, start + self.batch_size)
                crops = crop_at(frames, which_frame[part], corners[part], self.crop_size)  # (m, S, S, C)
                found = self.instance.predict(crops)  # (m, K, 3) in crop pixels
                found[..., :2] += corners[part, None, :]
                peaks[which_frame[part], which_slot[part]] = found
        scored = np.isfinite(peaks[..., 2])  # (B, N, K)
        mean_score = np.where(scored, peaks[..., 2], 0.0).sum(axis=-1) / np.maximum(scored.sum(axis=-1), 1)  # (B, N)
        instance_score = np.where(np.isfinite(centre_scores), centre_scores * mean_score, np.nan)
        keep = _distinct(peaks, instance_score, self.config.duplicate_distance * self.crop_size)
        return _best_first(peaks, instance_score.astype(np.float32), keep, centres.astype(np.float32))

    def find_centres(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Animals' centres in frame pixels (B, N, 2) and peak values (B, N), NaN in empty slots (N: max_animals)."""
        n_frames, height, width = frames.shape[:3]
        ratio = scale_ratio(height, width, self.config.centroid_scale)
        stride = self.centroid.stride
        out_xy = np.full((n_frames, self.config.max_animals, 2), np.nan)
        out_score = np.full((n_frames, self.config.max_animals), np.nan)
        for start in range(0, n_frames, self.batch_size):
            small = scale_images(frames[start : start + self.batch_size], self.config.centroid_scale)
            maps = self.centroid.maps(small)[:, :1]  # (b, 1, h, w)
            found = find_peaks_multi(maps, self.config.max_animals, self.config.peak_threshold, self.config.nms_radius)
            found = found[:, 0].cpu().numpy()  # (b, N, 3) map cells
            xy = from_scaled(map_to_image(found[..., :2], stride), ratio)  # (b, N, 2) frame pixels
            out_xy[start : start + len(found)] = xy
            out_score[start : start + len(found)] = found[..., 2]
        return out_xy, out_score


def _distinct(peaks: np.ndarray, score: np.ndarray, distance: float) -> np.ndarray:
    """Detections kept, bool (B, N): of two whose keypoints lie `distance` apart on average, the better one."""
    keep = np.isfinite(score)
    for b in range(len(peaks)):
        order = [n for n in np.argsort(-np.nan_to_num(score[b], nan=-np.inf), kind="stable") if keep[b, n]]
        for a, n in enumerate(order):
            for m in order[:a]:
                if not keep[b, m]:
                    continue
                both = np.isfinite(peaks[b, n, :, 0]) & np.isfinite(peaks[b, m, :, 0])
                gap = np.linalg.norm(peaks[b, n, both, :2] - peaks[b, m, both, :2], axis=-1)
                if both.any() and gap.mean() < distance:
                    keep[b, n] = False
                    break
    return keep


def _best_first(peaks: np.ndarray, score: np.ndarray, keep: np.ndarray, centres: np.ndarray) -> Detections:
    """Kept detections moved to the front of each frame's slots, best first."""
    order = np.argsort(-np.where(keep, score, -np.inf), axis=1, kind="stable")  # (B, N)
    peaks = np.take_along_axis(peaks, order[..., None, None], axis=1)
    score = np.take_along_axis(score, order, axis=1)
    centres = np.take_along_axis(centres, order[..., None], axis=1)
    valid = np.take_along_axis(keep, order, axis=1)
    peaks[~valid], score[~valid], centres[~valid] = np.nan, np.nan, np.nan
    return Detections(peaks.astype(np.float32), score.astype(np.float32), valid, centres.astype(np.float32))
