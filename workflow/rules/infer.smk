# Video inference and aggregation into one Parquet dataset per model. The plan cuts every
# video into shards and gathers them into jobs by work (posecore.infer.plan); each infer job is
# one process that loads the model once and goes through its shards, writing one Parquet file
# per shard. Shard files are not declared outputs: Snakemake removes a failed job's outputs,
# and finished shards must outlive a failed or cancelled job, so that its rerun does only the
# rest (a job keeps every shard file that is finished with the same model, video and frames).


# On a cluster these run where Snakemake runs: one plan for the archive, and aggregations of
# seconds each, which would wait longer in the queue than they run.
localrules:
    plan_inference,
    aggregate,


checkpoint plan_inference:
    input:
        probes=expand(rules.probe_video.output.probe, video=VIDEOS.index),
    output:
        plan="results/shards/plan.tsv",
    log:
        "logs/plan_inference.log",
    conda:
        "../envs/posecore.yaml"
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 2000 * attempt,
        runtime=10,
    params:
        videos=VIDEOS.index.tolist(),
        frames_per_shard=config["inference"]["frames_per_shard"],
        frames_per_job=config["inference"]["frames_per_job"],
    script:
        "../scripts/plan_inference.py"


rule check_model:
    input:
        model=rules.train.output.model,
    output:
        checked="results/models/{model}/keypoints.checked",
    log:
        "logs/check_model/{model}.log",
    conda:
        "../envs/posecore.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        keypoints=config["dataset"]["keypoints"],
    script:
        "../scripts/check_model.py"


rule infer:
    input:
        # The plan only names this job's shards (params.shards, which reruns the job when they
        # change); rewriting it with the same shards must not rerun every job.
        plan=ancient(rules.plan_inference.output.plan),
        model=rules.train.output.model,
        checked=rules.check_model.output.checked,
        videos=job_videos,
        probes=job_probes,
    output:
        record="results/predictions/{model}/jobs/{job}.tsv",
    log:
        "logs/infer/{model}/{job}.log",
    benchmark:
        "benchmarks/infer/{model}/{job}.tsv"
    conda:
        "../envs/posecore.yaml"
    threads: config["inference"]["threads"]
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=lambda wildcards, attempt: 240 * attempt,
        gpu=config["gpus"],
    params:
        shards=job_shards,
        video_paths=job_video_paths,
        predictions=lambda wildcards: f"results/predictions/{wildcards.model}",
        # Only what changes a shard's rows is a parameter (a change reruns the job); how it
        # runs (batch size, device, compilation, decoders) the script reads from the config.
        priors=config["inference"]["priors"],
        precision=config["inference"]["precision"],
        keypoints=config["dataset"]["keypoints"],
    script:
        "../scripts/infer.py"


rule aggregate:
    input:
        records=video_records,
        probe=rules.probe_video.output.probe,
    output:
        trajectories="results/trajectories/{model}/video={video}/part-0.parquet",
    log:
        "logs/aggregate/{model}/{video}.log",
    conda:
        "../envs/posecore.yaml"
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=30,
    params:
        predictions=lambda wildcards: f"results/predictions/{wildcards.model}",
    script:
        "../scripts/aggregate.py"


# One record per batch of videos (common.smk's BATCHES), listing its videos. It computes
# nothing: it joins the probes of several videos, so that profiles/slurm's job group sends
# each batch's probing out as one SLURM job.
rule prepare_batch:
    input:
        probes=lambda wildcards: expand(
            rules.probe_video.output.probe, video=BATCHES[wildcards.batch]
        ),
    output:
        record="results/jobs/prepare-{batch}.txt",
    log:
        "logs/prepare_batch/{batch}.log",
    conda:
        "../envs/posecore.yaml"
    threads: 1
    resources:
        mem_mb=100,
        runtime=1,
    params:
        videos=lambda wildcards: BATCHES[wildcards.batch],
    shell:
        "printf '%s\\n' {params.videos} > {output.record} 2> {log}"
