# Shared by all the .smk files: the pipeline graph from aimed.pipeline.STAGES (the one source of
# truth for stage names, CLI commands, upstream stages and output paths), run configs, targets.

import functools
import os
import pathlib
import sys

import yaml
from snakemake.exceptions import WorkflowError

from aimed.config import load_config, run_schema
from aimed.errors import ConfigError
from aimed.pipeline import EVAL_SPLITS, STAGES, prepare_data_command, stage_outputs
from aimed.provenance import fingerprint


report: "../report/workflow.rst"


# The shell commands call `aimed` and `python`: resolve both in the environment that runs
# Snakemake (the one that imported aimed above), even when that environment is not activated.
_BIN_DIR = os.path.dirname(sys.executable)
if os.environ.get("PATH", "").split(os.pathsep)[0] != _BIN_DIR:
    os.environ["PATH"] = os.pathsep.join(p for p in (_BIN_DIR, os.environ.get("PATH")) if p)


wildcard_constraints:
    run="[^/]+",


RUNS_DIR = pathlib.Path("runs")
MNIST = config["datasets"]["mnist"]


def _check_runs():
    """Fail at parse time, with one clear message, when a listed run has no config file."""
    missing = [run for run in config["runs"] if not (RUNS_DIR / run / "config.yaml").is_file()]
    if missing:
        known = sorted(p.parent.name for p in RUNS_DIR.glob("*/config.yaml"))
        raise WorkflowError(
            f"config key 'runs' lists {', '.join(repr(r) for r in missing)}, but there is no "
            f"{' or '.join(str(RUNS_DIR / r / 'config.yaml') for r in missing)}. "
            f"Known runs: {', '.join(known) or 'none'}. Create the run's config.yaml or remove the "
            f"name from 'runs' in the workflow config (config/config.yaml or --config)."
        )


_check_runs()


@functools.lru_cache(maxsize=None)
def run_config(run):
    """The raw runs/<run>/config.yaml (aimed validates it fully when a stage runs)."""
    path = RUNS_DIR / run / "config.yaml"
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise WorkflowError(f"cannot read run config {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise WorkflowError(f"run config {path} is a {type(data).__name__}, not a mapping of keys")
    return data


PROJECT_DIR = pathlib.Path(workflow.basedir).resolve()


@functools.lru_cache(maxsize=None)
def validated_run_config(run):
    """The run config as aimed loads it: validated, with defaults merged."""
    try:
        return load_config(RUNS_DIR / run / "config.yaml")
    except ConfigError as exc:
        raise WorkflowError(str(exc)) from None


def stage_params(name):
    """The stage's fingerprint as params, so Snakemake's params trigger reruns exactly the changed stages.

    Snakemake evaluates params again just before a job runs, so a dataset written earlier in the
    same invocation is hashed as it is when the stage reads it.
    """

    def _fingerprint(wildcards):
        return fingerprint(validated_run_config(wildcards.run), PROJECT_DIR, name, wildcards.get("split"))

    return _fingerprint


def _run_default(key):
    return run_schema()["properties"][key]["default"]


def run_data_dir(wildcards):
    """Input of validate_data: the dataset folder named by the run's data_dir.

    Like every stage input it is ancient(): the stage fingerprint in params covers its content,
    and DVC rewrites mtimes on checkout, which must not look like a change.
    """
    return ancient(os.path.normpath(run_config(wildcards.run).get("data_dir") or _run_default("data_dir")))


def run_splits(run):
    """Splits evaluated for a run: its evaluation.splits, by default every split."""
    evaluation = run_config(run).get("evaluation") or {}
    splits = evaluation.get("splits") or run_schema()["properties"]["evaluation"]["properties"]["splits"]["default"]
    return [s for s in EVAL_SPLITS if s in splits]


def stage_output(name):
    """A rule's output: the stage's files, directory() folders and report() files."""
    s = STAGES[name]
    caption = f"../report/{s.rule}.rst"
    return [
        *s.outputs,
        *(directory(d) for d in s.directories),
        *(report(r, caption=caption, category=name, subcategory="{run}") for r in s.reports),
    ]


def stage_input(name):
    """A rule's input: every output of the stage's upstream stages, as ancient() (see run_data_dir)."""
    return [ancient(path) for up in STAGES[name].upstream for path in stage_outputs(up)]


def stage_shell(name):
    """The stage's CLI command from STAGES, with its stdout and stderr sent to the log."""
    command = STAGES[name].command.format(run="{wildcards.run}", split="{wildcards.split}")
    return f"{command} > {{log}} 2>&1"


def stage_log(name, *wildcards):
    """logs/{run}/<rule>.log, with any further wildcards (evaluate: split) in the name."""
    suffix = "".join(f"_{{{w}}}" for w in wildcards)
    return f"logs/{{run}}/{STAGES[name].rule}{suffix}.log"




def final_targets():
    """Targets of the default target (all): every run's evaluation and check-preprocessing outputs."""
    targets = []
    for run in config["runs"]:
        targets += stage_outputs("check-preprocessing", run=run)
        for split in run_splits(run):
            targets += stage_outputs("evaluate", run=run, split=split)
    return targets


def sync_dvc_yaml():
    """Regenerate dvc.yaml when the runs or the graph changed, so both runners describe one graph."""
    from aimed import dvc

    target = PROJECT_DIR / "dvc.yaml"
    text = dvc.render(config, PROJECT_DIR)
    if not target.is_file() or target.read_text() != text:
        target.write_text(text)


def sync_dvc_lock():
    """Record what Snakemake just built in dvc.lock, so `dvc status` agrees with Snakemake.

    Only stages whose outputs all exist are committed (a run may have targeted a subset).
    """
    from aimed import dvc
    from aimed.provenance import write_fingerprint_files

    if not (PROJECT_DIR / ".dvc").is_dir():
        return
    for run in config["runs"]:
        write_fingerprint_files(validated_run_config(run), PROJECT_DIR, run)
    complete = [
        name
        for name, stage in dvc.build(config, PROJECT_DIR)["stages"].items()
        if all((PROJECT_DIR / dvc.out_path(out)).exists() for out in stage.get("outs", []) + stage.get("metrics", []))
    ]
    if complete:
        shell("dvc commit --force --quiet " + " ".join(complete))
