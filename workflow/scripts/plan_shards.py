import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from posecore.infer import plan_shards, write_shard_plan
from posecore.io.video import VideoInfo

info = VideoInfo.read_json(snakemake.input.probe)
write_shard_plan(plan_shards(info.n_frames, snakemake.params.shard_size), snakemake.output.plan)
