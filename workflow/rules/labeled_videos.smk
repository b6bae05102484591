# Labeled videos (optional): each video with its keypoints and skeleton drawn over it, as
# DeepLabCut's create_labeled_video makes them. Ask for them by name: `snakemake labeled_videos`
# (every video of the sheet) or `snakemake results/labeled_videos/<model>/<video>.mp4`.


rule label_video:
    input:
        video=video_path,
        trajectories=rules.aggregate.output.trajectories,
        probe=rules.probe_video.output.probe,
    output:
        video="results/labeled_videos/{model}/{video}.mp4",
    log:
        "logs/label_video/{model}/{video}.log",
    benchmark:
        "benchmarks/label_video/{model}/{video}.tsv"
    conda:
        "../envs/posecore.yaml"
    threads: 2
    resources:
        mem_mb=2000,
        runtime=lambda wildcards, attempt: 120 * attempt,
    params:
        style=config["labeled_videos"],
        keypoints=config["dataset"]["keypoints"],
        skeleton=config["dataset"]["skeleton"],
    script:
        "../scripts/label_video.py"


rule labeled_videos:
    input:
        expand(rules.label_video.output.video, model=MODEL, video=VIDEOS.index),
