import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)

from posecore.io.exports import export_trajectories
from posecore.io.video import VideoInfo

info = VideoInfo.read_json(snakemake.input.probe)
export_trajectories(
    snakemake.input.trajectories,
    snakemake.params.kind,
    snakemake.output.export,
    video_path=snakemake.input.video,
    keypoint_names=snakemake.params.keypoints,
    skeleton=[tuple(edge) for edge in snakemake.params.skeleton],
    video_shape=(info.n_frames, info.height, info.width, 3),
)
