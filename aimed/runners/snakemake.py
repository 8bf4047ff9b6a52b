"""The Snakemake runner: what the rules of ``workflow/rules/*.smk`` call, as importable functions.

``workflow/rules/common.smk`` builds one :class:`SnakemakeRunner` from Snakemake's ``workflow``
and ``config`` objects and hands its methods to the rules. The graph (stage names, CLI commands,
upstream stages, output paths) comes from :data:`aimed.pipeline.STAGES`. Fingerprints decide
reruns: each stage job gets its fingerprint as ``params``, and Snakemake's record of the params
follows the outputs' own ``fingerprint.json`` (:meth:`SnakemakeRunner.sync_recorded_params`).
"""

from __future__ import annotations

import collections
import functools
import json
import os
import pathlib
import re
import sys
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.io import ancient, directory, report

from aimed.config import load_config
from aimed.errors import ConfigError
from aimed.pipeline import (
    REPORT_FORMATS,
    STAGES,
    fingerprint_file,
    jobs,
    run_report_format,
    run_splits,
    stage_outputs,
    with_report_format,
)
from aimed.provenance import fingerprint, read_recorded, write_fingerprint_files
from aimed.runners import dvc, read_raw_run_config, run_config_path, run_default, run_jobs

#: Keys of resources.<rule> that are not Snakemake resources.
_NOT_RESOURCES = ("retries",)


def use_python_env() -> None:
    """Put the running Python's bin folder first on PATH.

    The shell commands call `aimed` and `python`: resolve both in the environment that runs
    Snakemake (the one that imported aimed), even when that environment is not activated.
    """
    bin_dir = os.path.dirname(sys.executable)
    if os.environ.get("PATH", "").split(os.pathsep)[0] != bin_dir:
        os.environ["PATH"] = os.pathsep.join(p for p in (bin_dir, os.environ.get("PATH")) if p)


def stage_output(name: str, report_format: str = REPORT_FORMATS[0]) -> List[Any]:
    """A rule's output: the stage's files, directory() folders and report() files."""
    s = STAGES[name]
    caption = f"../report/{s.rule}.rst"
    return [
        *(with_report_format(o, report_format) for o in s.outputs),
        *(directory(d) for d in s.directories),
        *(report(r, caption=caption, category=name, subcategory="{run}") for r in s.reports),
    ]


def stage_shell(name: str) -> str:
    """The stage's CLI command from STAGES, with its stdout and stderr sent to the log."""
    command = STAGES[name].command.format(run="{wildcards.run}", split="{wildcards.split}")
    return f"{command} > {{log}} 2>&1"


def stage_log(name: str, *wildcards: str) -> str:
    """logs/{run}/<rule>.log, with any further wildcards (evaluate: split) in the name."""
    suffix = "".join(f"_{{{w}}}" for w in wildcards)
    return f"logs/{{run}}/{STAGES[name].rule}{suffix}.log"


def stage_resources(config: Mapping[str, Any], rule_name: str) -> Dict[str, Any]:
    """The resources of a rule's jobs: ``resources.<rule_name>`` over the shared keys; nulls left out.

    Each rule's resources come from the workflow config's ``resources:`` section, so a user edits
    one place. The SLURM executor (profiles/slurm) turns them into sbatch flags; locally only
    ``gpu`` matters, against ``--resources gpu=N``.
    """
    section = config["resources"]
    shared = {key: value for key, value in section.items() if not isinstance(value, dict)}
    own = {key: value for key, value in section[rule_name].items() if key not in _NOT_RESOURCES}
    merged = dict(shared)
    merged.update((key, value) for key, value in own.items() if value is not None)
    return {key: value for key, value in merged.items() if value is not None}


def stage_retries(config: Mapping[str, Any], rule_name: str) -> int:
    """How often Snakemake resubmits a failed job of the rule (``resources.<rule_name>.retries``)."""
    return config["resources"][rule_name].get("retries", 0)


def write_recorded_params(persistence: Any, paths: Iterable[str], params: List[str]) -> bool:
    """Set Snakemake's recorded params of ``paths`` to ``params``; whether any record changed.

    Snakemake has no public API for writing a record: this uses its persistence backend's
    _read_record/_write_record (Snakemake 9).
    """
    from snakemake.persistence import RECORD_FORMAT_VERSION, MetadataRecord

    written = False
    for path in paths:
        record = persistence._read_record(path) or MetadataRecord(record_format_version=RECORD_FORMAT_VERSION)
        if record.params != params:
            record.params = params
            persistence._write_record(path, record)
            written = True
    if written:
        persistence._clear_cache()
    return written


class SnakemakeRunner:
    """The glue between Snakemake's ``workflow`` and ``config`` and the pipeline graph.

    ``runs_dir``: where run configs are read (relative to the working directory, as Snakemake's paths).
    """

    def __init__(self, workflow: Any, config: Mapping[str, Any], runs_dir: pathlib.Path = pathlib.Path()):
        self.workflow = workflow
        self.config = config
        self.project_dir = pathlib.Path(workflow.basedir).resolve()
        self._runs_root = pathlib.Path(runs_dir)
        #: Fingerprints computed in this invocation, one memo per run (upstream stages are shared).
        self.fingerprint_memos: Dict[str, Dict[str, str]] = collections.defaultdict(dict)
        self.run_config = functools.lru_cache(maxsize=None)(self._run_config)
        self.validated_run_config = functools.lru_cache(maxsize=None)(self._validated_run_config)

    @property
    def runs(self) -> List[str]:
        return list(self.config["runs"])

    def check_runs(self) -> None:
        """Fail at parse time, with one clear message, when a listed run has no config file."""
        missing = [run for run in self.runs if not run_config_path(self._runs_root, run).is_file()]
        if missing:
            runs_dir = run_config_path(self._runs_root, "x").parent.parent
            known = sorted(p.parent.name for p in runs_dir.glob("*/config.yaml"))
            raise WorkflowError(
                f"config key 'runs' lists {', '.join(repr(r) for r in missing)}, but there is no "
                f"{' or '.join(str(run_config_path(self._runs_root, r)) for r in missing)}. "
                f"Known runs: {', '.join(known) or 'none'}. Create the run's config.yaml or remove the "
                f"name from 'runs' in the workflow config (config/config.yaml or --config)."
            )

    def _run_config(self, run: str) -> Dict[str, Any]:
        """The raw runs/<run>/config.yaml (aimed validates it fully when a stage runs)."""
        path = run_config_path(self._runs_root, run)
        try:
            return read_raw_run_config(path)
        except (OSError, yaml.YAMLError) as exc:
            raise WorkflowError(f"cannot read run config {path}: {exc}") from exc
        except TypeError as exc:
            raise WorkflowError(str(exc)) from None

    def _validated_run_config(self, run: str):
        """The run config as aimed loads it: validated, with defaults merged."""
        try:
            return load_config(run_config_path(self._runs_root, run))
        except ConfigError as exc:
            raise WorkflowError(str(exc)) from None

    def run_configs(self) -> Dict[str, Dict[str, Any]]:
        return {run: self.run_config(run) for run in self.runs}

    # ------------------------------------------------------------------------- fingerprints

    def job_fingerprint(self, name: str, wildcards: Mapping[str, Any]) -> str:
        """The current fingerprint of a stage job (wildcards: run, and split for evaluate)."""
        run = wildcards["run"]
        return fingerprint(self.validated_run_config(run), self.project_dir, name, wildcards.get("split"),
                           _memo=self.fingerprint_memos[run])

    def job_made_from(self, name: str, wildcards: Mapping[str, Any]) -> Optional[str]:
        """The fingerprint a stage job's outputs were made from (their fingerprint.json); None without outputs."""
        recorded = read_recorded(self.project_dir / STAGES[name].folder.format(**wildcards))
        return recorded["fingerprint"] if recorded else None

    def job_is_current(self, name: str, wildcards: Mapping[str, Any]) -> bool:
        """Whether a stage job's outputs were made for its current fingerprint, by whichever runner."""
        return self.job_made_from(name, wildcards) == self.job_fingerprint(name, wildcards)

    def stage_params(self, name: str) -> Callable:
        """The stage's fingerprint as params, so Snakemake's params trigger reruns exactly the changed stages.

        Snakemake compares them with its record of what the outputs were made from, which
        sync_recorded_params first sets from the outputs' own fingerprint.json.
        """

        def _fingerprint(wildcards):
            wildcards = dict(wildcards.items())
            self.sync_recorded_params(name, wildcards)
            return self.job_fingerprint(name, wildcards)

        return _fingerprint

    def sync_recorded_params(self, name: str, wildcards: Mapping[str, Any]) -> None:
        """Set Snakemake's recorded params of a stage job's outputs to the fingerprint in their fingerprint.json.

        Snakemake's params trigger compares with its own metadata, which only Snakemake writes: outputs
        made by `dvc repro` or the aimed CLI would look outdated to it, and outputs restored by
        `dvc pull` into a fresh clone (no metadata) would never look outdated. The stage's
        fingerprint.json says what its outputs were made from, whoever made them (`aimed why` reads
        it too), so Snakemake's record follows it. This assumes the fingerprint is the rule's only
        param (Snakemake records params as sorted reprs).
        """
        persistence = self.workflow.persistence
        made_from = self.job_made_from(name, wildcards)
        if persistence is None or made_from is None:  # no DAG being built, or no outputs (the job runs anyway)
            return
        write_recorded_params(persistence, self.job_outputs(name, wildcards), [repr(made_from)])

    def current_inputs_ancient(self, name: str, wildcards: Mapping[str, Any], paths: Iterable[str]) -> List[Any]:
        """A stage job's input paths: ancient() while the job is current, plain while it is outdated.

        Snakemake 9 compares input and output mtimes whatever --rerun-triggers says, and DVC rewrites
        mtimes on checkout, which must not look like a change (the fingerprint covers the inputs'
        content). But Snakemake reaches a job downstream of one that runs only through inputs that are
        not ancient: with ancient inputs an outdated export would wait for the next invocation after
        its train job.
        """
        return [ancient(p) for p in paths] if self.job_is_current(name, wildcards) else list(paths)

    # ------------------------------------------------------------------------- rules

    def run_data_dir(self, wildcards: Any) -> List[Any]:
        """Input of validate_data: the dataset folder named by the run's data_dir (see current_inputs_ancient)."""
        path = os.path.normpath(self.run_config(wildcards.run).get("data_dir") or run_default("data_dir"))
        return self.current_inputs_ancient("validate-data", dict(wildcards.items()), [path])

    def run_splits(self, run: str) -> List[str]:
        """Splits evaluated for a run: its evaluation.splits, by default every split."""
        return run_splits(self.run_config(run))

    def run_report_format(self, run: str) -> str:
        """A run's evaluation.report_format, which names its evaluation report."""
        return run_report_format(self.run_config(run))

    def job_outputs(self, name: str, wildcards: Mapping[str, Any]) -> tuple:
        """The output paths of a stage job (wildcards: run, and split for evaluate)."""
        return stage_outputs(name, self.run_report_format(wildcards["run"]), **wildcards)

    def runs_reporting_as(self, report_format: str) -> str:
        """A wildcard constraint matching the runs whose report has this format (and nothing else)."""
        runs = [run for run in self.runs if self.run_report_format(run) == report_format]
        return "|".join(re.escape(run) for run in runs) or "(?!)"

    def stage_input(self, name: str) -> Callable:
        """A rule's input: every output of the stage's upstream stages (see current_inputs_ancient)."""

        def _input(wildcards):
            wildcards = dict(wildcards.items())
            paths = [path for up in STAGES[name].upstream for path in self.job_outputs(up, wildcards)]
            return self.current_inputs_ancient(name, wildcards, paths)

        return _input

    def final_targets(self) -> List[str]:
        """Targets of the default target (all): every run's evaluation and check-preprocessing outputs."""
        targets: List[str] = []
        for run, stage, split in run_jobs(self.run_configs()):
            if stage in ("check-preprocessing", "evaluate"):
                targets += self.job_outputs(stage, {"run": run, "split": split} if split else {"run": run})
        return targets

    def stage_resources(self, rule_name: str) -> Dict[str, Any]:
        return stage_resources(self.config, rule_name)

    def stage_retries(self, rule_name: str) -> int:
        return stage_retries(self.config, rule_name)

    # ------------------------------------------------------------------------- DVC

    def sync_dvc_yaml(self) -> bool:
        """Regenerate dvc.yaml when the runs or the graph changed, so both runners describe one graph."""
        return dvc.write_dvc_yaml(self.config, self.project_dir, self.run_configs())

    def sync_dvc_lock(self) -> None:
        """Record in dvc.lock the stages built since DVC last wrote it, so `dvc status` agrees with Snakemake.

        A stage whose outputs are newer than dvc.lock was built outside DVC: by this invocation, by
        an earlier one that failed or was stopped, or by the aimed CLI. Of those, only stages whose
        outputs are all there and, for the aimed stages, were made for their current fingerprint are
        committed: an outdated stage that this run did not target stays outdated for DVC. The
        fingerprint stage is committed with them, after every run's fingerprint files are brought up
        to date. The cost follows what was built: fingerprints come from the memo filled while
        Snakemake built the DAG.
        """
        if not (self.project_dir / ".dvc").is_dir():
            print(f"aimed: {self.project_dir} is not a DVC repository (no .dvc/), so dvc.lock is not written and the "
                  f"results are not versioned; run `git init && dvc init` there once to version them.",
                  file=sys.stderr)
            return
        built = dvc.built_since_lock(self.project_dir, dvc.jobs_by_stage(self.config, self.run_configs()))
        if not built:
            return
        if any(job is None for job in built.values()):
            # A dataset is the one fingerprint input that a job writes: the memo predates it.
            self.fingerprint_memos.clear()
        current = [name for name, job in built.items() if job is None or self.job_is_current(*job)]
        self.refresh_fingerprint_files()
        dvc.commit(self.project_dir, [*current, dvc.FINGERPRINT_STAGE])

    def fingerprint_files_current(self, run: str) -> bool:
        """Whether results/<run>/fingerprints/ holds the current fingerprint of each of the run's stages."""
        for name, split in jobs():
            try:
                written = json.loads((self.project_dir / fingerprint_file(run, name, split or "")).read_text())["fingerprint"]
            except (OSError, ValueError, KeyError, TypeError):
                return False
            if written != self.job_fingerprint(name, {"run": run, "split": split}):
                return False
        return True

    def refresh_fingerprint_files(self) -> None:
        """Rewrite the fingerprint files of the runs whose files are out of date (the fingerprint stage's outputs)."""
        for run in self.runs:
            if not self.fingerprint_files_current(run):
                write_fingerprint_files(self.validated_run_config(run), self.project_dir, run)
