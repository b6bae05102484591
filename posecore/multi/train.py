"""Train the top-down multi-animal model: the centroid model, then the instance model, one model file.

`train_topdown(dataset, config, model_config, train_config, out_dir)` derives the two datasets
(`posecore.multi.topdown`), trains each with posecore's training loop (`train_model`, so every
training option applies to both), and writes one model file, `out_dir/model.pt`
(`posecore.multi.predict.save_topdown`), which the top-down predictor loads. Each model keeps its
own folder (`centroid/`, `instance/`: checkpoints, metrics.csv, config.yaml).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

from posecore.errors import InputError
from posecore.io.dataset import TrainingDataset
from posecore.models.export import load_model
from posecore.multi.predict import save_topdown
from posecore.multi.topdown import TopDownConfig, centroid_dataset, crop_size_for, instance_dataset
from posecore.train.config import ModelConfig, TrainConfig
from posecore.train.fit import TrainResult, train_model


@dataclass(frozen=True)
class TopDownResult:
    """What training the top-down model produced.

    Attributes:
        model_path: the model file (out_dir/model.pt).
        centroid: the centroid model's training.
        instance: the instance model's training.
        crop_size: the instance crops' side in pixels.
        seconds: wall-clock time of both trainings.
    """

    model_path: Path
    centroid: TrainResult
    instance: TrainResult
    crop_size: int
    seconds: float


def train_topdown(
    dataset: TrainingDataset,
    config: TopDownConfig,
    model_config: ModelConfig,
    train_config: TrainConfig,
    out_dir: str | Path,
    *,
    centroid_train_config: TrainConfig | None = None,
    centroid_model_config: ModelConfig | None = None,
    source: str | Path = "training dataset",
) -> TopDownResult:
    """Train the centroid and instance models on a multi-animal dataset and write the model file.

    Args:
        dataset: a multi-animal training dataset (`assemble_dataset(..., max_animals=...)`).
        config: how animals are found and cropped.
        model_config: the architecture of both models.
        train_config: how the instance model trains (its `crop_size` is unused: it sees crops).
        out_dir: where the model file and each model's folder go.
        centroid_train_config: how the centroid model trains; default `train_config`.
        centroid_model_config: the centroid model's architecture; default `model_config`.
        source: the dataset's file, named in errors.

    Raises:
        InputError: the dataset holds one animal per frame, or a frame with more animals than
            `config.max_animals`, or the anchor is not a keypoint.
    """
    if not dataset.multi_animal:
        raise InputError(
            source, "a single-animal dataset: assemble it with dataset.max_animals above 1 to train top-down"
        )
    most = int(dataset.instance_counts().max(initial=0))
    if most > config.max_animals:
        raise InputError(source, f"a frame holds {most} animals, more than animals.max_animals ({config.max_animals})")
    if config.anchor and config.anchor not in dataset.keypoint_names:
        raise InputError(source, f"anchor {config.anchor!r} is not a keypoint of {list(dataset.keypoint_names)}")
    out_dir = Path(out_dir)
    crop_size = crop_size_for(dataset, config)
    start = time.perf_counter()
    centroid_config = centroid_train_config or train_config
    centroid = train_model(
        centroid_dataset(dataset, config),
        centroid_model_config or model_config,
        centroid_config,
        out_dir / "centroid",
        source=source,
    )
    instance_config = dataclasses.replace(train_config, crop_size=0)  # the crops are the instance model's frames
    instances = instance_dataset(dataset, config, crop_size)
    instance = train_model(instances, model_config, instance_config, out_dir / "instance", source=source)
    seconds = time.perf_counter() - start
    model_path = out_dir / "model.pt"
    save_topdown(model_path, load_model(centroid.model_path), load_model(instance.model_path), config, crop_size)
    return TopDownResult(model_path, centroid, instance, crop_size, seconds)
