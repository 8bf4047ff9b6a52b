"""aimed.runners.snakemake, called directly on real project files (no Snakemake run)."""

from __future__ import annotations

import os
import pathlib
import types

import pytest
import yaml
from conftest import REPO_ROOT, copy_project, prepare_dataset, update_yaml
from snakemake.exceptions import WorkflowError
from snakemake.io import is_flagged
from snakemake.persistence.file import FilePersistence
from snakemake.utils import validate

from aimed.pipeline import EVAL_SPLITS, REPORT_FORMATS, STAGES, stage_outputs
from aimed.runners import dvc
from aimed.runners.snakemake import (
    SnakemakeRunner,
    stage_log,
    stage_output,
    stage_resources,
    stage_retries,
    stage_shell,
    write_recorded_params,
)

RUN = "mnist-tf"


def _workflow_config(project: pathlib.Path) -> dict:
    config = yaml.safe_load((project / "config" / "config.yaml").read_text())
    validate(config, str(project / "workflow" / "schemas" / "config.schema.yaml"))
    return config


@pytest.fixture
def project(tmp_path, monkeypatch) -> pathlib.Path:
    """A copy of the project's workflow files, the working directory (Snakemake's paths are relative)."""
    project = copy_project(tmp_path / "project")
    monkeypatch.chdir(project)
    return project


def _runner(project: pathlib.Path, persistence=None) -> SnakemakeRunner:
    # Snakemake's workflow object, reduced to the two attributes the runner reads.
    workflow = types.SimpleNamespace(basedir=str(project), persistence=persistence)
    return SnakemakeRunner(workflow, _workflow_config(project))


@pytest.mark.parametrize("report_format", REPORT_FORMATS)
@pytest.mark.parametrize("name", list(STAGES))
def test_stage_output_declares_the_pipeline_outputs_with_their_flags(name, report_format):
    declared = stage_output(name, report_format)
    assert tuple(str(path) for path in declared) == stage_outputs(name, report_format)
    assert {str(p) for p in declared if is_flagged(p, "directory")} == set(STAGES[name].directories)
    assert {str(p) for p in declared if is_flagged(p, "report")} == set(STAGES[name].reports)


def test_stage_shell_and_log_follow_the_stage_command():
    assert stage_shell("evaluate") == "aimed evaluate {wildcards.run} --split {wildcards.split} > {log} 2>&1"
    assert stage_log("evaluate", "split") == "logs/{run}/evaluate_{split}.log"
    assert stage_log("check-preprocessing") == "logs/{run}/check_preprocessing.log"


def test_resources_merge_the_shared_keys_and_leave_out_nulls():
    config = _workflow_config(REPO_ROOT)
    config["resources"]["slurm_account"] = "lab"
    train = stage_resources(config, "train")
    assert train["slurm_account"] == "lab" and train["gpu"] == 1
    assert "retries" not in train and "gres" not in train and "slurm_partition" not in train
    assert stage_retries(config, "train") == config["resources"]["train"]["retries"]
    assert stage_retries(config, "export") == 0


def test_a_listed_run_without_config_fails_at_parse_time(project):
    update_yaml(project / "config" / "config.yaml", {"runs": [RUN, "nope"]})
    with pytest.raises(WorkflowError, match=r"'nope'.*runs/nope/config.yaml.*Known runs: mnist-full, mnist-gen, mnist-tf"):
        _runner(project).check_runs()


def test_an_unreadable_run_config_is_a_workflow_error(project):
    (project / "runs" / RUN / "config.yaml").write_text("- a list\n")
    with pytest.raises(WorkflowError, match="is a list, not a mapping of keys"):
        _runner(project).run_config(RUN)
    (project / "runs" / RUN / "config.yaml").write_text("key: [unclosed\n")
    with pytest.raises(WorkflowError, match="cannot read run config"):
        _runner(project).run_config(RUN)


def test_splits_report_formats_and_targets_come_from_the_run_configs(project):
    update_yaml(project / "runs" / RUN / "config.yaml", {"evaluation": {"splits": ["test"], "report_format": "parquet"}})
    runner = _runner(project)
    assert runner.run_splits(RUN) == ["test"] and runner.run_splits("mnist-gen") == list(EVAL_SPLITS)
    assert runner.runs_reporting_as("parquet") == "mnist\\-tf"
    assert runner.runs_reporting_as("csv") == "mnist\\-gen"
    expected = [*stage_outputs("check-preprocessing", run=RUN),
                *stage_outputs("evaluate", "parquet", run=RUN, split="test"),
                *stage_outputs("check-preprocessing", run="mnist-gen")]
    for split in EVAL_SPLITS:
        expected += stage_outputs("evaluate", run="mnist-gen", split=split)
    assert runner.final_targets() == expected


def test_write_recorded_params_writes_snakemake_records_once(tmp_path):
    persistence = FilePersistence(path=tmp_path / ".snakemake")
    paths = [str(tmp_path / "a.json"), str(tmp_path / "b.json")]
    assert write_recorded_params(persistence, paths, ["'abc'"])
    assert [persistence._read_record(p).params for p in paths] == [["'abc'"], ["'abc'"]]
    assert not write_recorded_params(persistence, paths, ["'abc'"])
    assert write_recorded_params(persistence, paths[:1], ["'def'"])
    assert persistence._read_record(paths[0]).params == ["'def'"]


def test_params_follow_the_outputs_fingerprint_and_inputs_are_ancient_while_current(project):
    prepare_dataset(project / "datasets" / "mnist", train=8, validation=4, test=4)
    persistence = FilePersistence(path=project / ".snakemake")
    runner = _runner(project, persistence)
    wildcards = {"run": RUN}
    current = runner.job_fingerprint("validate-data", wildcards)
    assert runner.job_made_from("validate-data", wildcards) is None and not runner.job_is_current("validate-data", wildcards)
    assert runner.stage_params("validate-data")(types.SimpleNamespace(items=wildcards.items)) == current
    assert not (project / ".snakemake" / "metadata").exists() or not os.listdir(project / ".snakemake" / "metadata")

    folder = project / STAGES["validate-data"].folder.format(run=RUN)
    folder.mkdir(parents=True)
    (folder / "fingerprint.json").write_text('{"fingerprint": "old"}')
    assert runner.stage_params("validate-data")(types.SimpleNamespace(items=wildcards.items)) == current
    outputs = runner.job_outputs("validate-data", wildcards)
    assert {tuple(persistence._read_record(p).params) for p in outputs} == {("'old'",)}
    inputs = runner.current_inputs_ancient("validate-data", wildcards, ["x"])
    assert inputs == ["x"] and not is_flagged(inputs[0], "ancient")

    (folder / "fingerprint.json").write_text(f'{{"fingerprint": "{current}"}}')
    assert runner.job_is_current("validate-data", wildcards)
    assert is_flagged(runner.current_inputs_ancient("validate-data", wildcards, ["x"])[0], "ancient")
    assert is_flagged(runner.run_data_dir(types.SimpleNamespace(run=RUN, items=wildcards.items))[0], "ancient")


def test_sync_dvc_yaml_writes_the_rendered_dvc_yaml_once(project):
    runner = _runner(project)
    (project / "dvc.yaml").unlink(missing_ok=True)
    assert runner.sync_dvc_yaml()
    text = (project / "dvc.yaml").read_text()
    assert text == dvc.render(runner.config, project, runner.run_configs())
    assert not runner.sync_dvc_yaml()


def test_sync_dvc_lock_outside_a_dvc_repository_writes_nothing_and_says_how_to_version(project, capsys):
    runner = _runner(project)
    runner.sync_dvc_lock()
    assert not (project / "dvc.lock").exists()
    said = capsys.readouterr().err
    assert "is not a DVC repository" in said and "git init && dvc init" in said
