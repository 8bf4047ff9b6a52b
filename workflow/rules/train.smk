# Checkpoints and resume state live in state/{run}/, deliberately not an output: Snakemake
# deletes the outputs of a failed job, and a rerun must resume from the last checkpoint.
rule train:
    input:
        stage_input("train"),
    output:
        stage_output("train"),
    params:
        fingerprint=stage_params("train"),
    log:
        stage_log("train"),
    message:
        "train: training run {wildcards.run}"
    threads: config["train_threads"]
    resources:
        gpu=1,
    shell:
        stage_shell("train")
