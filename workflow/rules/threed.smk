# Multi-camera 3D: one calibration per rig of the config, one 3D trajectory dataset per session
# of the video sheet (common.smk's RIGS and SESSIONS; both empty for single-camera archives).


rule calibrate:
    input:
        sources=lambda wildcards: calibration_inputs(wildcards.rig),
    output:
        calibration="results/calibration/{rig}/calibration.toml",
        corners="results/calibration/{rig}/corners.parquet",
        summary="results/calibration/{rig}/summary.json",
    log:
        "logs/calibrate/{rig}.log",
    benchmark:
        "benchmarks/calibrate/{rig}.tsv"
    conda:
        "../envs/posecore.yaml"
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=lambda wildcards, attempt: 60 * attempt,
    params:
        rig=lambda wildcards: RIGS[wildcards.rig],
        source=lambda wildcards: f"{CONFIG_SOURCE}: threed.rigs.{wildcards.rig}",
    script:
        "../scripts/calibrate.py"


# The 2D input is each view's aggregated trajectory file, by its path (it stays the same
# however the inference stage makes it); the probes give each video's size, checked against
# the calibration before anything is triangulated.
rule triangulate:
    input:
        calibration=lambda wildcards: expand(
            rules.calibrate.output.calibration, rig=SESSIONS[wildcards.session].rig
        ),
        trajectories=lambda wildcards: expand(
            "results/trajectories/{model}/video={video}/part-0.parquet",
            model=wildcards.model,
            video=session_videos(wildcards.session),
        ),
        probes=lambda wildcards: expand(
            rules.probe_video.output.probe, video=session_videos(wildcards.session)
        ),
    output:
        trajectories="results/trajectories3d/{model}/session={session}/part-0.parquet",
    log:
        "logs/triangulate/{model}/{session}.log",
    benchmark:
        "benchmarks/triangulate/{model}/{session}.tsv"
    conda:
        "../envs/posecore.yaml"
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=lambda wildcards, attempt: 60 * attempt,
    params:
        views=lambda wildcards: [
            {"camera": v.camera, "video": v.video, "offset": v.offset}
            for v in SESSIONS[wildcards.session].views
        ],
        triangulation=config["threed"]["triangulation"],
        skeleton=config["dataset"].get("skeleton", []),
        source=CONFIG_SOURCE,
    script:
        "../scripts/triangulate.py"
