rule evaluate:
    input:
        stage_input("evaluate"),
    output:
        stage_output("evaluate"),
    params:
        fingerprint=stage_params("evaluate"),
    log:
        stage_log("evaluate", "split"),
    message:
        "evaluate: evaluating run {wildcards.run} on the {wildcards.split} split"
    wildcard_constraints:
        split="|".join(EVAL_SPLITS),
    resources:
        **stage_resources("evaluate"),
    shell:
        stage_shell("evaluate")
