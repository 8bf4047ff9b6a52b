rule prepare_data:
    input:
        script="workflow/scripts/prepare_mnist.py",
        sample=MNIST["sample"],
    output:
        directory(MNIST["path"]),
    params:
        command=prepare_data_command(MNIST),
    log:
        "logs/prepare_data.log",
    message:
        "prepare_data: writing the example MNIST dataset to {output}"
    resources:
        **stage_resources("prepare_data"),
    shell:
        "{params.command} > {log} 2>&1"
