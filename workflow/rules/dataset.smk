# Labeled frames (DeepLabCut, SLEAP or COCO label files) to the HDF5 training dataset.


rule assemble_dataset:
    input:
        labels=label_files(),
    output:
        dataset="results/datasets/{dataset}.h5",
    log:
        "logs/assemble_dataset/{dataset}.log",
    conda:
        "../envs/posecore.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        keypoints=config["dataset"]["keypoints"],
        skeleton=config["dataset"]["skeleton"],
        swap_pairs=config["dataset"]["swap_pairs"],
        split=config["dataset"]["split"],
        max_animals=config["animals"]["max_animals"],
        unique_keypoints=config["animals"]["unique_keypoints"],
    script:
        "../scripts/assemble_dataset.py"
