rule prepare_data:
    input:
        script="workflow/scripts/prepare_mnist.py",
        sample=MNIST["sample"],
    output:
        directory(MNIST["path"]),
    params:
        limits=mnist_limit_args(),
    log:
        "logs/prepare_data.log",
    message:
        "prepare_data: writing the example MNIST dataset to {output}"
    shell:
        "python {input.script} --sample {input.sample} --out {output} {params.limits} > {log} 2>&1"
