rule check_preprocessing:
    input:
        stage_input("check-preprocessing"),
    output:
        stage_output("check-preprocessing"),
    params:
        fingerprint=stage_params("check-preprocessing"),
    log:
        stage_log("check-preprocessing"),
    message:
        "check-preprocessing: checking preprocessed batches of run {wildcards.run}"
    resources:
        **stage_resources("check_preprocessing"),
    shell:
        stage_shell("check-preprocessing")
