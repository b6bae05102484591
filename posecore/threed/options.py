"""Building the 3D stage's frozen config dataclasses from mappings (the workflow config), one way."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from posecore.errors import InputError

T = TypeVar("T")


def from_mapping(cls: type[T], values: Mapping[str, Any], source: str, what: str) -> T:
    """`cls(**values)`, with an unknown key or a bad value reported as an `InputError` naming `source`.

    Args:
        cls: a dataclass.
        values: its fields' values (missing ones take their defaults).
        source: where the mapping comes from, e.g. "config/config.yaml: threed.rigs.arena".
        what: the mapping's name in messages ("board", "calibration", ...).
    """
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(source, f"unknown {what} keys {unknown} (known: {sorted(known)})")
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise InputError(source, f"{what}: {error}") from None
