rule evaluate:
    input:
        stage_input("evaluate"),
    output:
        stage_output("evaluate", REPORT_FORMATS[0]),
    params:
        fingerprint=stage_params("evaluate"),
    log:
        stage_log("evaluate", "split"),
    message:
        "evaluate: evaluating run {wildcards.run} on the {wildcards.split} split"
    wildcard_constraints:
        run=runs_reporting_as(REPORT_FORMATS[0]),
        split="|".join(EVAL_SPLITS),
    resources:
        **stage_resources("evaluate"),
    shell:
        stage_shell("evaluate")


# The report is an output and its name follows evaluation.report_format (report.parquet), so the
# runs that write Parquet have the same rule with that output.
use rule evaluate as evaluate_parquet with:
    output:
        stage_output("evaluate", "parquet"),
    wildcard_constraints:
        run=runs_reporting_as("parquet"),
        split="|".join(EVAL_SPLITS),
