rule export:
    input:
        stage_input("export"),
    output:
        stage_output("export"),
    params:
        fingerprint=stage_params("export"),
    log:
        stage_log("export"),
    message:
        "export: exporting the best epoch of run {wildcards.run}"
    resources:
        **stage_resources("export"),
    shell:
        stage_shell("export")
