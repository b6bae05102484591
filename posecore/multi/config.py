"""The workflow's `animals` and `tracking` sections as the multi-animal configs, parsed once at the edge.

`animals.max_animals` 1 (the default) is the single-animal workflow, unchanged. Above 1, the
dataset keeps every animal of a frame, the model is top-down (`TopDownConfig`, the rest of
`animals`), and each video's detections are tracked (`TrackerConfig`: `tracking`, with
`animals.max_animals` and `animals.count`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from posecore.multi.topdown import TopDownConfig
from posecore.multi.tracking import TrackerConfig

DATASET_KEYS = ("max_animals", "count", "unique_keypoints", "exports")
"""Keys of `animals` that are not the top-down model's."""


def is_multi_animal(animals: Mapping[str, Any]) -> bool:
    """Whether the workflow's `animals` section asks for several animals per frame."""
    return int(animals.get("max_animals", 1)) > 1


def topdown_config(animals: Mapping[str, Any], source: str | Path = "<config>") -> TopDownConfig:
    """The top-down model's settings from the `animals` section (an unknown key is an InputError naming it)."""
    settings = {k: v for k, v in animals.items() if k not in DATASET_KEYS}
    return TopDownConfig.from_dict({**settings, "max_animals": int(animals.get("max_animals", 1))}, source)


def tracker_config(
    animals: Mapping[str, Any], tracking: Mapping[str, Any], source: str | Path = "<config>"
) -> TrackerConfig:
    """The tracker's settings: the `tracking` section with `animals.max_animals` and `animals.count`."""
    settings = {**tracking, "n_animals": int(animals.get("max_animals", 1)), "count": animals.get("count", "known")}
    return TrackerConfig.from_dict(settings, str(source))
