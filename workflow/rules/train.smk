# Checkpoints and resume state live in state/{run}/, deliberately not an output: Snakemake
# deletes the outputs of a failed job, and a rerun must resume from the last checkpoint. So does a
# retry (resources.train.retries in config/config.yaml), e.g. after a SLURM job was preempted.
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
        **stage_resources("train"),
    retries: stage_retries("train")
    shell:
        stage_shell("train")
