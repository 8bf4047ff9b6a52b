# Shared by all the .smk files: the pipeline graph from aimed.pipeline.STAGES (the one source of
# truth for stage names, CLI commands, upstream stages and output paths), run configs, targets.

import collections
import functools
import os
import pathlib
import sys

import yaml
from snakemake.exceptions import WorkflowError

from aimed.config import load_config, run_schema
from aimed.errors import ConfigError
from aimed.pipeline import EVAL_SPLITS, STAGES, prepare_data_command, prepare_data_deps, stage_outputs
from aimed.provenance import fingerprint, read_recorded


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


#: Fingerprints computed in this invocation, one memo per run (upstream stages are shared).
_FINGERPRINT_MEMOS = collections.defaultdict(dict)


def job_fingerprint(name, wildcards):
    """The current fingerprint of a stage job (wildcards: run, and split for evaluate)."""
    run = wildcards["run"]
    return fingerprint(validated_run_config(run), PROJECT_DIR, name, wildcards.get("split"),
                       _memo=_FINGERPRINT_MEMOS[run])


def job_made_from(name, wildcards):
    """The fingerprint a stage job's outputs were made from (their fingerprint.json); None without outputs."""
    recorded = read_recorded(PROJECT_DIR / STAGES[name].folder.format(**wildcards))
    return recorded["fingerprint"] if recorded else None


def job_is_current(name, wildcards):
    """Whether a stage job's outputs were made for its current fingerprint, by whichever runner."""
    return job_made_from(name, wildcards) == job_fingerprint(name, wildcards)


def stage_params(name):
    """The stage's fingerprint as params, so Snakemake's params trigger reruns exactly the changed stages.

    Snakemake compares them with its record of what the outputs were made from, which
    sync_recorded_params first sets from the outputs' own fingerprint.json.
    """

    def _fingerprint(wildcards):
        wildcards = dict(wildcards.items())
        sync_recorded_params(name, wildcards)
        return job_fingerprint(name, wildcards)

    return _fingerprint


def sync_recorded_params(name, wildcards):
    """Set Snakemake's recorded params of a stage job's outputs to the fingerprint in their fingerprint.json.

    Snakemake's params trigger compares with its own metadata, which only Snakemake writes: outputs
    made by `dvc repro` or the aimed CLI would look outdated to it, and outputs restored by
    `dvc pull` into a fresh clone (no metadata) would never look outdated. The stage's
    fingerprint.json says what its outputs were made from, whoever made them (`aimed why` reads
    it too), so Snakemake's record follows it. Snakemake has no public API for writing a record:
    this uses its persistence backend's _read_record/_write_record (Snakemake 9), and assumes the
    fingerprint is the rule's only param (Snakemake records params as sorted reprs).
    """
    from snakemake.persistence import RECORD_FORMAT_VERSION, MetadataRecord

    persistence = workflow.persistence
    made_from = job_made_from(name, wildcards)
    if persistence is None or made_from is None:  # no DAG being built, or no outputs (the job runs anyway)
        return
    params = [repr(made_from)]
    written = False
    for path in stage_outputs(name, **wildcards):
        record = persistence._read_record(path) or MetadataRecord(record_format_version=RECORD_FORMAT_VERSION)
        if record.params != params:
            record.params = params
            persistence._write_record(path, record)
            written = True
    if written:
        persistence._clear_cache()


def current_inputs_ancient(name, wildcards, paths):
    """A stage job's input paths: ancient() while the job is current, plain while it is outdated.

    Snakemake 9 compares input and output mtimes whatever --rerun-triggers says, and DVC rewrites
    mtimes on checkout, which must not look like a change (the fingerprint covers the inputs'
    content). But Snakemake reaches a job downstream of one that runs only through inputs that are
    not ancient: with ancient inputs an outdated export would wait for the next invocation after
    its train job.
    """
    return [ancient(p) for p in paths] if job_is_current(name, wildcards) else list(paths)


def _run_default(key):
    return run_schema()["properties"][key]["default"]


def run_data_dir(wildcards):
    """Input of validate_data: the dataset folder named by the run's data_dir (see current_inputs_ancient)."""
    path = os.path.normpath(run_config(wildcards.run).get("data_dir") or _run_default("data_dir"))
    return current_inputs_ancient("validate-data", dict(wildcards.items()), [path])


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
    """A rule's input: every output of the stage's upstream stages (see current_inputs_ancient)."""

    def _input(wildcards):
        wildcards = dict(wildcards.items())
        paths = [path for up in STAGES[name].upstream for path in stage_outputs(up, **wildcards)]
        return current_inputs_ancient(name, wildcards, paths)

    return _input


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

    Only stages whose outputs all exist are committed (a run may have targeted a subset), and of
    the aimed stages only those made for their current fingerprint: an outdated stage that this
    run did not target must stay outdated for DVC too.
    """
    from aimed import dvc
    from aimed.provenance import why, write_fingerprint_files

    if not (PROJECT_DIR / ".dvc").is_dir():
        return
    outdated = set()
    for run in config["runs"]:
        run_cfg = validated_run_config(run)
        write_fingerprint_files(run_cfg, PROJECT_DIR, run)
        for name, stage in STAGES.items():
            for split in run_splits(run) if name == "evaluate" else [None]:
                if why(run_cfg, PROJECT_DIR, name, PROJECT_DIR / stage.folder.format(run=run, split=split), split):
                    outdated.add(dvc.stage_name(run, name, split))
    complete = [
        name
        for name, stage in dvc.build(config, PROJECT_DIR)["stages"].items()
        if name not in outdated
        and all((PROJECT_DIR / dvc.out_path(out)).exists() for out in stage.get("outs", []) + stage.get("metrics", []))
    ]
    if complete:
        shell("dvc commit --force --quiet " + " ".join(complete))


# ----------------------------------------------------------------------------- resources
# Each rule's resources come from the workflow config's `resources:` section, so a user edits
# one place. The SLURM executor (profiles/slurm) turns them into sbatch flags; locally only
# `gpu` matters, against `--resources gpu=N`.

#: Keys of resources.<rule> that are not Snakemake resources.
_NOT_RESOURCES = ("retries",)


def stage_resources(rule_name):
    """The resources of a rule's jobs: ``resources.<rule_name>`` over the shared keys; nulls left out."""
    section = config["resources"]
    shared = {key: value for key, value in section.items() if not isinstance(value, dict)}
    own = {key: value for key, value in section[rule_name].items() if key not in _NOT_RESOURCES}
    merged = dict(shared)
    merged.update((key, value) for key, value in own.items() if value is not None)
    return {key: value for key, value in merged.items() if value is not None}


def stage_retries(rule_name):
    """How often Snakemake resubmits a failed job of the rule (``resources.<rule_name>.retries``)."""
    return config["resources"][rule_name].get("retries", 0)
