import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from posecore.io.frames import KMeansConfig, extract_frames
from posecore.io.video import VideoInfo

info = VideoInfo.read_json(snakemake.input.probe)
extract_frames(
    snakemake.input.video,
    snakemake.output.frames,
    snakemake.output.table,
    n_frames=snakemake.params.n_frames,
    method=snakemake.params.method,
    kmeans=KMeansConfig(**snakemake.params.kmeans),
    info=info,
)
