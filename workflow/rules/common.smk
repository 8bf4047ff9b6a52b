# Shared by all the .smk files: the pipeline graph from aimed.pipeline.STAGES (the one source of
# truth for stage names, CLI commands, upstream stages and output paths), run configs, targets.

import collections
import functools
import json
import os
import pathlib
import re
import sys

import yaml
from snakemake.exceptions import WorkflowError

from aimed.config import load_config, run_schema
from aimed.errors import ConfigError
from aimed.pipeline import (EVAL_SPLITS, REPORT_FORMATS, STAGES, prepare_data_command, prepare_data_deps,
                            stage_outputs, with_report_format)
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


#: libyaml's parser when PyYAML has it: the pure-Python one takes about 2 ms per run config, at every invocation.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.lru_cache(maxsize=None)
def run_config(run):
    """The raw runs/<run>/config.yaml (aimed validates it fully when a stage runs)."""
    path = RUNS_DIR / run / "config.yaml"
    try:
        data = yaml.load(path.read_text(), Loader=_YAML_LOADER) or {}
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
    for path in job_outputs(name, wildcards):
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


def run_report_format(run):
    """A run's evaluation.report_format, which names its evaluation report."""
    evaluation = run_config(run).get("evaluation") or {}
    return evaluation.get("report_format") or REPORT_FORMATS[0]


def job_outputs(name, wildcards):
    """The output paths of a stage job (wildcards: run, and split for evaluate)."""
    return stage_outputs(name, run_report_format(wildcards["run"]), **wildcards)


def runs_reporting_as(report_format):
    """A wildcard constraint matching the runs whose report has this format (and nothing else)."""
    runs = [run for run in config["runs"] if run_report_format(run) == report_format]
    return "|".join(re.escape(run) for run in runs) or "(?!)"


def stage_output(name, report_format=REPORT_FORMATS[0]):
    """A rule's output: the stage's files, directory() folders and report() files."""
    s = STAGES[name]
    caption = f"../report/{s.rule}.rst"
    return [
        *(with_report_format(o, report_format) for o in s.outputs),
        *(directory(d) for d in s.directories),
        *(report(r, caption=caption, category=name, subcategory="{run}") for r in s.reports),
    ]


def stage_input(name):
    """A rule's input: every output of the stage's upstream stages (see current_inputs_ancient)."""

    def _input(wildcards):
        wildcards = dict(wildcards.items())
        paths = [path for up in STAGES[name].upstream for path in job_outputs(up, wildcards)]
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
        targets += job_outputs("check-preprocessing", {"run": run})
        for split in run_splits(run):
            targets += job_outputs("evaluate", {"run": run, "split": split})
    return targets


def sync_dvc_yaml():
    """Regenerate dvc.yaml when the runs or the graph changed, so both runners describe one graph."""
    from aimed import dvc

    target = PROJECT_DIR / "dvc.yaml"
    text = dvc.render(config, PROJECT_DIR, {run: run_config(run) for run in config["runs"]})
    if not target.is_file() or target.read_text() != text:
        target.write_text(text)


def sync_dvc_lock():
    """Record in dvc.lock the stages built since DVC last wrote it, so `dvc status` agrees with Snakemake.

    `dvc repro` and `dvc commit` write dvc.lock after each stage they record, so a stage whose
    outputs are newer than dvc.lock was built outside DVC: by this invocation, by an earlier one
    that failed or was stopped, or by the aimed CLI. Of those, only stages whose outputs are all
    there and, for the aimed stages, were made for their current fingerprint are committed: an
    outdated stage that this run did not target stays outdated for DVC. The fingerprint stage is
    committed with them, after every run's fingerprint files are brought up to date. The cost
    follows what was built: fingerprints come from the memo filled while Snakemake built the DAG.
    """
    from aimed import dvc

    if not (PROJECT_DIR / ".dvc").is_dir():
        return
    built = _stages_built_since_dvc_lock()
    if not built:
        return
    if dvc.PREPARE_DATA_STAGE in built:
        # The dataset is the one fingerprint input that a job writes: the memo predates it.
        _FINGERPRINT_MEMOS.clear()
    current = [name for name, job in built.items() if job is None or job_is_current(*job)]
    _refresh_fingerprint_files()
    _dvc_commit([*current, dvc.FINGERPRINT_STAGE])


def _stages_built_since_dvc_lock():
    """{DVC stage name: (stage, wildcards), None for prepare_data} of the complete stages with outputs newer than dvc.lock."""
    from aimed import dvc

    lock = PROJECT_DIR / "dvc.lock"
    recorded_at = lock.stat().st_mtime_ns if lock.is_file() else -1
    jobs = {dvc.PREPARE_DATA_STAGE: ([MNIST["path"]], None)}
    for run in config["runs"]:
        for name in STAGES:
            for split in run_splits(run) if name == "evaluate" else [None]:
                wildcards = {"run": run, "split": split}
                jobs[dvc.stage_name(run, name, split)] = (job_outputs(name, wildcards), (name, wildcards))
    built = {}
    for dvc_name, (outputs, job) in jobs.items():
        try:
            newest = max((PROJECT_DIR / path).stat().st_mtime_ns for path in outputs)
        except FileNotFoundError:  # incomplete: not built, or only partly
            continue
        if newest > recorded_at:
            built[dvc_name] = job
    return built


def _fingerprint_files_current(run):
    """Whether results/<run>/fingerprints/ holds the current fingerprint of each of the run's stages."""
    from aimed.pipeline import fingerprint_file

    for name in STAGES:
        for split in EVAL_SPLITS if name == "evaluate" else [None]:
            try:
                written = json.loads((PROJECT_DIR / fingerprint_file(run, name, split or "")).read_text())["fingerprint"]
            except (OSError, ValueError, KeyError, TypeError):
                return False
            if written != job_fingerprint(name, {"run": run, "split": split}):
                return False
    return True


def _refresh_fingerprint_files():
    """Rewrite the fingerprint files of the runs whose files are out of date (the fingerprint stage's outputs)."""
    from aimed.provenance import write_fingerprint_files

    for run in config["runs"]:
        if not _fingerprint_files_current(run):
            write_fingerprint_files(validated_run_config(run), PROJECT_DIR, run)


def _dvc_commit(names):
    """`dvc commit --force NAMES`, with dvc.yaml and dvc.lock read once and dvc.lock written once.

    The dvc command reads both files again and rewrites dvc.lock for each name it is given (DVC
    3), seconds per stage at many runs. This does for all names at once what dvc/repo/commit.py
    does for one, with DVC's classes.
    """
    from dvc.dvcfile import load_file
    from dvc.repo import Repo, lock_repo

    with Repo(str(PROJECT_DIR)) as repo, lock_repo(repo):
        pipeline = load_file(repo, str(PROJECT_DIR / "dvc.yaml"))
        stages = [pipeline.stages[name] for name in names]
        for stage in stages:
            stage.save()
            stage.commit()
        pipeline.dump_stages(stages, update_pipeline=False)


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
