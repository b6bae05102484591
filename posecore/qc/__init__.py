"""Quality control: one self-contained HTML report per model over evaluation, training and trajectories.

`build_report` reads the artefacts of the other stages (metrics and predictions from evaluation,
the training log, the trajectories and the video probes) and writes a page that opens offline.
"""

from posecore.qc.report import build_report

__all__ = ["build_report"]
