# Shared by all the .smk files. The logic lives in aimed.runners.snakemake (importable, unit-tested);
# the graph (stage names, CLI commands, upstream stages, output paths) in aimed.pipeline.STAGES.

from aimed.pipeline import EVAL_SPLITS, REPORT_FORMATS, prepare_data_command, prepare_data_deps
from aimed.runners.snakemake import SnakemakeRunner, stage_log, stage_output, stage_shell, use_python_env


report: "../report/workflow.rst"


use_python_env()


wildcard_constraints:
    run="[^/]+",


#: The example dataset that rule prepare_data writes (datasets.mnist of the workflow config).
MNIST = config["datasets"]["mnist"]

_runner = SnakemakeRunner(workflow, config)
_runner.check_runs()

# What the rules call (see aimed.runners.snakemake.SnakemakeRunner).
stage_input = _runner.stage_input
stage_params = _runner.stage_params
stage_resources = _runner.stage_resources
stage_retries = _runner.stage_retries
run_data_dir = _runner.run_data_dir
runs_reporting_as = _runner.runs_reporting_as
final_targets = _runner.final_targets
sync_dvc_yaml = _runner.sync_dvc_yaml
sync_dvc_lock = _runner.sync_dvc_lock
