"""DVC on a built project: alternating with Snakemake, training continued for more epochs, versioning
(push, clone, pull, checkout), metrics, plots.

The project is ``built_template`` (one full Snakemake run, committed as "run 1"); the tests run
in order on one copy of it.
"""

from __future__ import annotations

import collections
import hashlib
import json
import pathlib
import shutil
import sys

import numpy as np
import pytest
import yaml
from conftest import copy_project, git, run_in, update_yaml
from plans import FROM_TRAIN, assert_plans, dvc_is_clean, dvc_jobs, jobs, snakemake_jobs, snakemake_plan

from aimed.config import load_workflow_config
from aimed.pipeline import EVAL_SPLITS
from aimed.runners import dvc
from aimed.runners.dvc import FINGERPRINT_STAGE

pytestmark = pytest.mark.slow

RUNS = ("mnist-tf", "mnist-gen")

#: Prints the SavedModel's output on a fixed input as JSON (run in the project's environment).
PREDICT = """
import json, sys
import numpy as np
import tensorflow as tf

outputs = []
for path in sys.argv[1:]:
    signature = tf.saved_model.load(path).signatures["serving_default"]
    _, inputs = signature.structured_input_signature
    (name, spec), = inputs.items()
    shape = [2 if d is None else d for d in spec.shape]
    x = np.linspace(0.0, 1.0, int(np.prod(shape)), dtype=np.float32).reshape(shape)
    outputs.append(next(iter(signature(**{name: tf.constant(x, dtype=spec.dtype)}).values())).numpy().tolist())
print(json.dumps(outputs))
"""


@pytest.fixture(scope="module")
def project(built_project) -> pathlib.Path:
    return built_project


def predict(project: pathlib.Path, *savedmodels: pathlib.Path) -> list:
    """The output of each SavedModel on the fixed input (one process: TensorFlow starts once)."""
    out = run_in(project, sys.executable, "-c", PREDICT, *map(str, savedmodels), timeout=300).stdout
    return [np.asarray(row) for row in json.loads(out.strip().splitlines()[-1])]


def sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def artifact_hashes(project: pathlib.Path) -> dict:
    """sha256 of the dataset, each run's exported model and evaluation reports: {relative path: hash}."""
    files = list((project / "datasets" / "mnist").rglob("*"))
    for run in RUNS:
        results = project / "results" / run
        files += [results / "export" / "model.keras", *(results / "export" / "savedmodel").rglob("*")]
        files += [results / "evaluate" / split / name
                  for split in EVAL_SPLITS for name in ("report.csv", "summary.json")]
    hashes = {p.relative_to(project).as_posix(): sha256(p) for p in files if p.is_file()}
    assert len(hashes) > 100, "the dataset and the results should all be there"
    return hashes


def test_status_is_clean_after_a_full_snakemake_run(project):
    assert dvc_is_clean(project)
    assert snakemake_plan(project) == collections.Counter()


def test_alternating_runners_take_each_others_results(project):
    config = project / "runs" / "mnist-tf" / "config.yaml"
    original = config.read_bytes()
    update_yaml(config, {"evaluation": {"thresholds": {"sparse_categorical_accuracy": {"min": 0.0}}}})
    run_in(project, "aimed", "dvc-yaml")
    ran, bookkeeping = dvc_jobs(project, run_in(project, "dvc", "repro", timeout=600).stdout)
    assert ran == jobs(["mnist-tf"], "evaluate:validation")
    assert bookkeeping == {FINGERPRINT_STAGE}
    assert dvc_is_clean(project)
    # What DVC built is up to date for Snakemake, although Snakemake's own records are older.
    assert snakemake_plan(project) == collections.Counter()

    config.write_bytes(original)
    proc = run_in(project, "snakemake", "--cores", "1", "--printshellcmds", "--nocolor", timeout=600)
    assert snakemake_jobs(proc.stdout) == jobs(["mnist-tf"], "evaluate:validation")
    # ... and what Snakemake built is up to date for DVC (the Snakefile commits it to dvc.lock).
    assert dvc_is_clean(project)


def test_more_epochs_continue_then_versions_push_clone_pull_checkout_metrics_plots(project, tmp_path):
    git(project, "add", "-A")
    git(project, "commit", "-q", "--allow-empty", "-m", "run 1, evaluated again")
    older = git(project, "rev-parse", "HEAD").strip()
    branch = git(project, "rev-parse", "--abbrev-ref", "HEAD").strip()
    older_hashes = artifact_hashes(project)
    savedmodel = project / "results" / "mnist-tf" / "export" / "savedmodel"
    older_savedmodel = shutil.copytree(savedmodel, tmp_path / "older_savedmodel")

    # A newer version: one more epoch of mnist-tf, which continues training from its checkpoint.
    results = project / "results" / "mnist-tf"
    history_before = (results / "train" / "history.csv").read_text().splitlines()
    assert len(history_before) == 1 + 2
    update_yaml(project / "runs" / "mnist-tf" / "config.yaml", {"epochs": 3})
    expected = jobs(["mnist-tf"], *FROM_TRAIN)
    assert_plans(project, expected)
    proc = run_in(project, "snakemake", "--cores", "2", "--resources", "gpu=1", "--printshellcmds", "--nocolor",
                  timeout=900)
    assert snakemake_jobs(proc.stdout) == expected
    log = (project / "logs" / "mnist-tf" / "train.log").read_text()
    assert "epoch 3/3" in log, log
    assert "epoch 1/3" not in log and "epoch 2/3" not in log, f"training restarted instead of resuming:\n{log}"
    assert json.loads((project / "state" / "mnist-tf" / "train" / "state.json").read_text())["epoch"] == 3
    history = (results / "train" / "history.csv").read_text().splitlines()
    assert len(history) == 1 + 3 and history[:3] == history_before, "the first two epochs were not kept"
    assert json.loads((results / "train" / "summary.json").read_text())["epochs"] == 3
    assert dvc_is_clean(project)
    assert snakemake_plan(project) == collections.Counter()
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "run 2: 3 epochs for mnist-tf")
    newer = git(project, "rev-parse", "HEAD").strip()
    newer_hashes = artifact_hashes(project)
    older_prediction, newer_prediction = predict(project, older_savedmodel, savedmodel)
    assert not np.allclose(newer_prediction, older_prediction, atol=1e-6), "a third epoch should change the model"
    changed = {path for path in newer_hashes if newer_hashes[path] != older_hashes.get(path)}
    assert "results/mnist-tf/export/model.keras" in changed
    assert not [path for path in changed if path.startswith(("datasets/", "results/mnist-gen/"))]

    # Metrics of each run and split, and their differences between the two commits.
    shown = json.loads(run_in(project, "dvc", "metrics", "show", "--json").stdout)[""]["data"]
    for run in RUNS:
        for split in EVAL_SPLITS:
            summary = shown[f"results/{run}/evaluate/{split}/summary.json"]["data"]
            assert summary["split"] == split and "loss" in summary["model_metrics"]
    diff = json.loads(run_in(project, "dvc", "metrics", "diff", older, newer, "--json").stdout)
    assert {f"results/mnist-tf/evaluate/{split}/summary.json" for split in EVAL_SPLITS} <= set(diff)
    loss = diff["results/mnist-tf/evaluate/test/summary.json"]["model_metrics.loss"]
    assert loss["old"] != loss["new"]
    assert not [path for path in diff if "mnist-gen" in path], "mnist-gen did not change"

    # Training curves as HTML.
    run_in(project, "dvc", "plots", "show", "-o", str(tmp_path / "plots"))
    html = (tmp_path / "plots" / "index.html").read_text()
    for run in RUNS:
        assert f"{run}: loss per epoch" in html
        history = (project / "results" / run / "train" / "history.csv").read_text().splitlines()
        column = history[0].split(",").index("val_loss")
        for row in history[1:]:
            assert f'"val_loss": "{row.split(",")[column]}"' in html, f"{run} history.csv is not plotted"

    # Push to a local remote; a fresh clone pulls data, models and reports byte for byte.
    run_in(project, "dvc", "remote", "add", "-d", "local", str(tmp_path / "remote"))
    git(project, "commit", "-q", "-am", "a DVC remote")
    run_in(project, "dvc", "push", timeout=600)
    clone = tmp_path / "clone"
    git(project, "clone", "-q", str(project), str(clone))
    run_in(clone, "dvc", "pull", timeout=600)
    assert artifact_hashes(clone) == newer_hashes
    assert dvc_is_clean(clone)
    # The resume state came with the pull: raising epochs in the clone continues the training.
    assert json.loads((clone / "state" / "mnist-tf" / "train" / "state.json").read_text())["epoch"] == 3
    update_yaml(clone / "runs" / "mnist-tf" / "config.yaml", {"epochs": 4})
    proc = run_in(clone, "aimed", "train", "mnist-tf", timeout=600)
    assert "epoch 4/4" in proc.stdout and "epoch 3/4" not in proc.stdout, proc.stdout[-3000:]

    # The older commit and `dvc checkout` bring back the older model (its recorded predictions).
    git(project, "checkout", "-q", older)
    run_in(project, "dvc", "checkout", timeout=600)
    assert artifact_hashes(project) == older_hashes
    np.testing.assert_allclose(predict(project, savedmodel)[0], older_prediction, rtol=0, atol=1e-6)
    # Checkout rewrote files and their timestamps: neither runner sees anything to do.
    assert dvc_is_clean(project)
    assert snakemake_plan(project) == collections.Counter()

    git(project, "checkout", "-q", branch)
    run_in(project, "dvc", "checkout", timeout=600)
    assert artifact_hashes(project) == newer_hashes
    assert dvc_is_clean(project)
    assert snakemake_plan(project) == collections.Counter()


def test_dvc_yaml_from_run_configs_read_by_the_caller_is_the_one_from_the_files(tmp_path):
    """The Snakefile passes the run configs it has read (with libyaml) and dvc.yaml is written with libyaml's
    emitter: both must give what `aimed dvc-yaml` and the pure-Python YAML emitter give."""
    project = copy_project(tmp_path / "project")
    workflow_config = load_workflow_config(project)
    run_configs = {run: yaml.safe_load((project / "runs" / run / "config.yaml").read_text())
                   for run in workflow_config["runs"]}
    text = dvc.render(workflow_config, project, run_configs)
    assert text == dvc.render(workflow_config, project)
    pure_python = yaml.dump(dvc.build(workflow_config, project), Dumper=yaml.SafeDumper, sort_keys=False, width=120)
    assert text == dvc.GENERATED_HEADER + pure_python
