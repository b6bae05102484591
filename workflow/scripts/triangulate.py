import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

import logging
from pathlib import Path

from posecore.io.video import VideoInfo
from posecore.threed.options import TriangulationConfig
from posecore.threed.session import View, run_session

logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
views = []
for view, trajectories, probe in zip(
    snakemake.params.views, snakemake.input.trajectories, snakemake.input.probes, strict=True
):
    info = VideoInfo.read_json(probe)
    views.append(View(view["camera"], view["video"], Path(trajectories), view["offset"], (info.width, info.height)))
run_session(
    Path(snakemake.input.calibration[0]),
    views,
    snakemake.wildcards.session,
    TriangulationConfig.from_dict(snakemake.params.triangulation, f"{snakemake.params.source}: threed"),
    [tuple(edge) for edge in snakemake.params.skeleton],
    Path(snakemake.output.trajectories),
)
