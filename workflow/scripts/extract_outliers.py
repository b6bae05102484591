import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from posecore.io.video import VideoInfo
from posecore.outliers import OutlierConfig, extract_outliers

settings = dict(snakemake.params.outliers)
labeler = settings.pop("labeler")
iteration = settings.pop("iteration")
extract_outliers(
    snakemake.input.trajectories,
    snakemake.input.video,
    snakemake.output.folder,
    OutlierConfig(**settings),
    labeler=labeler,
    iteration=iteration,
    video_name=snakemake.wildcards.video,
    skeleton=[tuple(edge) for edge in snakemake.params.skeleton],
    info=VideoInfo.read_json(snakemake.input.probe),
)
