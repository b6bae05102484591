import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from posecore.io.trajectories import aggregate_shards
from posecore.io.video import VideoInfo

info = VideoInfo.read_json(snakemake.input.probe)
aggregate_shards(snakemake.input.shards, info.n_frames, snakemake.output.trajectories)
