import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from posecore.io.video import VideoInfo
from posecore.labeled_video import LabelStyle, label_video

label_video(
    snakemake.input.video,
    snakemake.input.trajectories,
    snakemake.output.video,
    style=LabelStyle(**snakemake.params.style),
    skeleton=snakemake.params.skeleton,
    keypoint_names=snakemake.params.keypoints,
    info=VideoInfo.read_json(snakemake.input.probe),
    threads=snakemake.threads,
)
