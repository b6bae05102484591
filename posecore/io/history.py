"""The last good outputs of a stage, kept aside: a failed rerun never destroys them.

Snakemake removes a job's outputs before it runs the job again, so a retrain (or a dataset
assembly) that fails would leave no model (or dataset) at all. Each time the stage succeeds, its
outputs are hard-linked (copied where a link cannot be made) into a folder of its history,
`<history>/<UTC time>-<label>/`, which costs no space while the outputs are in place; the newest
`KEEP` entries stay. A user goes back to one by copying its files back (README, "When something
goes wrong"), or uses it where it is (`posecore predict --model <history>/.../model.pt`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

KEEP = 3


def keep_outputs(paths: Sequence[str | Path], history: str | Path, label: str, keep: int = KEEP) -> Path:
    """Link the finished files `paths` into a new entry of `history`; return the entry.

    Args:
        paths: the stage's outputs, complete (folders are not kept).
        history: the stage's history folder.
        label: what names this version besides its time (e.g. a content hash).
        keep: how many entries stay, newest first.
    """
    history = Path(history)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    entry = history / f"{stamp}-{label}"
    tmp = history / f".{entry.name}.tmp-{os.getpid()}"
    tmp.mkdir(parents=True)
    for path in map(Path, paths):
        if path.is_dir():
            continue
        try:
            os.link(path, tmp / path.name)
        except OSError:  # another file system, or no hard links: a copy
            shutil.copy2(path, tmp / path.name)
    tmp.rename(entry)  # an entry appears only when whole
    for old in sorted(p for p in history.iterdir() if not p.name.startswith("."))[:-keep]:
        shutil.rmtree(old)
    return entry
