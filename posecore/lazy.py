"""Lazy package exports: a package names what it exports and from which module, and imports it on first use.

So that importing a package (for example `posecore.train` for its config classes, as the workflow
does when it loads) does not import torch and Lightning until something that needs them is used.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(
    package: str, modules: Mapping[str, str], exported: Sequence[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The `__getattr__` and `__dir__` of a package whose names in `modules` are imported on first use.

    Args:
        package: the package's `__name__`.
        modules: each lazily exported name and the module that defines it.
        exported: the package's `__all__`.
    """

    def __getattr__(name: str) -> Any:
        if name not in modules:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(modules[name]), name)

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exported})

    return __getattr__, __dir__
