rule validate_data:
    input:
        run_data_dir,
    output:
        stage_output("validate-data"),
    params:
        fingerprint=stage_params("validate-data"),
    log:
        stage_log("validate-data"),
    message:
        "validate-data: checking the dataset of run {wildcards.run}"
    resources:
        **stage_resources("validate_data"),
    shell:
        stage_shell("validate-data")
