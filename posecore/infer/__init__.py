"""Video inference over an archive: shards planned by work, jobs that run many shards in one process.

- `posecore.infer.plan`: each video cut into shards, the shards gathered into jobs.
- `posecore.infer.decoders`: several decoders at once, handing batches to one consumer.
- `posecore.infer.shards`: shard files, written atomically and recognised when finished.
- `posecore.infer.job`: one job, the model loaded once, with its record of what became of each shard.
- `posecore.infer.single`: one video (or a range of it) to one trajectory file, the same way.

How the workflow runs them: docs/hpc.md ("Inference jobs"). The names below are imported on
first use (PEP 562), so that planning and aggregating never load torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from posecore.lazy import lazy_exports

if TYPE_CHECKING:
    from posecore.infer.job import check_keypoints, run_job, set_threads
    from posecore.infer.single import infer_video

__all__ = ["check_keypoints", "infer_video", "run_job", "set_threads"]

_MODULES = {
    "check_keypoints": "posecore.infer.job",
    "run_job": "posecore.infer.job",
    "set_threads": "posecore.infer.job",
    "infer_video": "posecore.infer.single",
}

__getattr__, __dir__ = lazy_exports(__name__, _MODULES, __all__)
