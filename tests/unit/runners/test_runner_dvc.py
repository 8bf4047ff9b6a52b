"""aimed.runners.dvc, called directly on real project files: dvc.yaml, built stages, dvc.lock."""

from __future__ import annotations

import os
import pathlib

import pytest
import yaml
from conftest import copy_project, update_yaml

from aimed.config import load_workflow_config
from aimed.pipeline import EVAL_SPLITS, HISTORY, STAGES, TRAIN_STATE, artifact_path, fingerprint_file, stage_outputs
from aimed.runners import dvc, run_jobs

RUN = "mnist-tf"


@pytest.fixture
def project(tmp_path) -> pathlib.Path:
    return copy_project(tmp_path / "project")


def _config(project: pathlib.Path) -> dict:
    return load_workflow_config(project)


def test_one_dataset_is_the_prepare_data_stage_and_several_are_named():
    dataset = {"script": "s.py", "sample": None, "path": "datasets/a"}
    assert dvc.prepare_data_stages({"datasets": {"x": dataset}}) == {"prepare_data": dataset}
    two = dvc.prepare_data_stages({"datasets": {"a": dataset, "b": {**dataset, "path": "datasets/b"}}})
    assert list(two) == ["prepare_data.a", "prepare_data.b"]
    assert dvc.prepare_data_stages({"datasets": {}}) == {}


def test_build_has_a_stage_per_job_with_its_fingerprint_file_as_dependency(project):
    update_yaml(project / "runs" / RUN / "config.yaml", {"evaluation": {"splits": ["test"]}})
    config = _config(project)
    built = dvc.build(config, project)
    run_configs = dvc.read_run_configs(config, project)
    jobs = list(run_jobs(run_configs))
    assert ("mnist-tf", "evaluate", "validation") not in jobs and ("mnist-gen", "evaluate", "validation") in jobs
    assert list(built["stages"]) == ["prepare_data", "fingerprint"] + [dvc.stage_name(*job) for job in jobs]
    for run, stage, split in jobs:
        entry = built["stages"][dvc.stage_name(run, stage, split)]
        assert entry["cmd"] == STAGES[stage].command.format(run=run, split=split)
        assert entry["deps"][0] == fingerprint_file(run, stage, split or "")
        # The train stage also keeps the resume state, persisted across `dvc repro`.
        state = [{TRAIN_STATE.format(run=run): {"persist": True}}] if stage == "train" else []
        assert entry["outs"] == [STAGES[stage].folder.format(run=run, split=split), *state]
    prepare = built["stages"]["prepare_data"]
    dataset = config["datasets"]["mnist"]
    assert prepare["outs"] == [dataset["path"]] and prepare["deps"][0] == dataset["script"]
    assert list(built["plots"][0]) == [artifact_path(HISTORY, RUN)]
    assert built["metrics"] == [f"results/{RUN}/evaluate/test/summary.json"] + [
        f"results/mnist-gen/evaluate/{split}/summary.json" for split in EVAL_SPLITS]


def test_fingerprint_deps_are_listed_when_they_exist(project):
    config = _config(project)
    assert config["fingerprint_deps"] == ["aimed"]  # the repository's config lists its own code
    assert "aimed" not in dvc.build(config, project)["stages"]["fingerprint"]["deps"]
    (project / "aimed").mkdir()
    deps = dvc.build(config, project)["stages"]["fingerprint"]["deps"]
    assert deps[-1] == "aimed" and deps[:2] == [f"runs/{run}/config.yaml" for run in config["runs"]]
    config["fingerprint_deps"] = []
    assert "aimed" not in dvc.build(config, project)["stages"]["fingerprint"]["deps"]


def test_write_dvc_yaml_writes_atomically_and_only_when_changed(project):
    config = _config(project)
    target = project / "dvc.yaml"
    target.unlink(missing_ok=True)
    assert not dvc.dvc_yaml_current(config, project)
    assert dvc.write_dvc_yaml(config, project)
    assert target.read_text() == dvc.render(config, project) and dvc.dvc_yaml_current(config, project)
    inode, mtime = target.stat().st_ino, target.stat().st_mtime_ns
    assert not dvc.write_dvc_yaml(config, project)
    assert (target.stat().st_ino, target.stat().st_mtime_ns) == (inode, mtime)
    config["runs"] = [RUN]
    assert dvc.write_dvc_yaml(config, project)
    assert target.stat().st_ino != inode  # replaced, never rewritten in place
    assert "mnist-gen" not in target.read_text()
    assert not [p for p in project.iterdir() if p.name.startswith(".dvc.yaml") or p.name.endswith(".tmp")]


def test_stages_built_since_dvc_lock_are_the_complete_ones_newer_than_it(project):
    config = _config(project)
    config["runs"] = [RUN]
    run_configs = dvc.read_run_configs(config, project)
    jobs = dvc.jobs_by_stage(config, run_configs)
    assert jobs["prepare_data"] == ([config["datasets"]["mnist"]["path"]], None)
    assert jobs[dvc.stage_name(RUN, "evaluate", "test")] == (
        list(stage_outputs("evaluate", run=RUN, split="test")), ("evaluate", {"run": RUN, "split": "test"}))

    def make(paths):
        for path in paths:
            (project / path).parent.mkdir(parents=True, exist_ok=True)
            (project / path).write_text("x")

    export = dvc.stage_name(RUN, "export")
    make(stage_outputs("export", run=RUN))
    make(stage_outputs("train", run=RUN)[:1])  # incomplete
    assert dvc.built_since_lock(project, jobs) == {export: ("export", {"run": RUN, "split": None})}
    (project / "dvc.lock").write_text("")
    lock_time = (project / "dvc.lock").stat().st_mtime_ns
    for path in stage_outputs("export", run=RUN):
        os.utime(project / path, ns=(lock_time - 10**9, lock_time - 10**9))
    assert dvc.built_since_lock(project, jobs) == {}


def test_commit_records_the_named_stages_in_dvc_lock(project, monkeypatch):
    from dvc.repo import Repo

    monkeypatch.chdir(project)  # as under Snakemake: DVC resolves stage paths against the working directory
    Repo.init(str(project), no_scm=True)
    config = _config(project)
    dataset = config["datasets"]["mnist"]
    (project / dataset["path"] / "train").mkdir(parents=True)
    (project / dataset["path"] / "train" / "labels.csv").write_text("filename,label\n")
    dvc.write_dvc_yaml(config, project)
    dvc.commit(project, ["prepare_data"])
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert list(lock["stages"]) == ["prepare_data"]
    assert lock["stages"]["prepare_data"]["outs"][0]["path"] == dataset["path"]
    assert {d["path"] for d in lock["stages"]["prepare_data"]["deps"]} == {dataset["script"], dataset["sample"]}
