rule prepare_data:
    input:
        prepare_data_deps(MNIST),
    output:
        directory(MNIST["path"]),
    params:
        command=prepare_data_command(MNIST),
    log:
        "logs/prepare_data.log",
    message:
        "prepare_data: writing the dataset {output}"
    resources:
        **stage_resources("prepare_data"),
    shell:
        "{params.command} > {log} 2>&1"
