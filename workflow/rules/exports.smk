# Exports of each video's tracked trajectories for the tools users proofread and analyse with
# (several animals per frame: config animals.exports): SLEAP's .slp, to proofread the tracks in
# SLEAP's GUI, and multi-animal DeepLabCut's H5, one individual per track.


rule export_video:
    input:
        trajectories=rules.aggregate.output.trajectories,
        video=video_path,
        probe=rules.probe_video.output.probe,
    output:
        export="results/exports/{model}/{video}.{suffix}",
    log:
        "logs/export_video/{model}/{video}.{suffix}.log",
    conda:
        "../envs/posecore.yaml"
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 2000 * attempt,
        runtime=30,
    params:
        kind=lambda wildcards: EXPORT_KINDS[wildcards.suffix],
        keypoints=config["dataset"]["keypoints"],
        skeleton=config["dataset"]["skeleton"],
    script:
        "../scripts/export_video.py"
