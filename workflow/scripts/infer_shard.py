import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from posecore.infer import infer_shard, read_shard_plan, set_threads
from posecore.io.video import VideoInfo
from posecore.predict import resolve_device

set_threads(snakemake.threads)
shard = read_shard_plan(snakemake.input.plan)[int(snakemake.wildcards.shard)]
infer_shard(
    snakemake.input.video,
    shard,
    snakemake.input.model,
    snakemake.output.shard,
    info=VideoInfo.read_json(snakemake.input.probe),
    batch_size=snakemake.params.batch_size,
    device=resolve_device(snakemake.params.device),
    config=snakemake.params.config,
    keypoints=snakemake.params.keypoints,
    compile=snakemake.params.compile,
    priors=snakemake.params.priors,
)
