"""Atomic file writes: a temporary name beside the target, then a rename.

A crash or a kill at any moment leaves either the old file or the complete new one, never a
partial file that a rerun would take for a finished output. What a kill does leave, the killed
writer's temporary file, goes when the path is written next (`temporary_path`).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is renamed to `path`, on error removed.

    The temporary name keeps the suffix of `path`, for writers that go by it (pynwb, matplotlib).
    """
    tmp = temporary_path(Path(path))
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def temporary_path(path: Path) -> Path:
    """The hidden name beside `path` that this process writes it under, its folder made.

    Temporary files of `path` left by earlier writers are removed first: a writer killed
    mid-write (SIGKILL, a lost node) cannot remove its own, and whoever writes `path` next owns
    it (one job per output), so they are nobody's.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{glob.escape(path.stem)}.tmp-*{glob.escape(path.suffix)}"):
        stale.unlink(missing_ok=True)
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
