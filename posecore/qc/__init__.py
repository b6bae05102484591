"""Quality control: one self-contained HTML report per model over its labels, training and video archive.

`build_report` reads the artefacts of the other stages (the training dataset, the evaluation,
the training log, the trajectories, the video probes, the jobs' logs and benchmarks) and writes
a page that opens offline, with a section per stage (`posecore.qc.labels`, `posecore.qc.training`,
`posecore.qc.archive`); it still builds when videos failed, and lists them with their errors.
"""

from posecore.qc.archive import ArchiveConfig, archive_qc
from posecore.qc.archive_html import archive_section
from posecore.qc.failures import find_failures
from posecore.qc.report import build_report, render_page, write_media

__all__ = [
    "ArchiveConfig",
    "archive_qc",
    "archive_section",
    "build_report",
    "find_failures",
    "render_page",
    "write_media",
]
