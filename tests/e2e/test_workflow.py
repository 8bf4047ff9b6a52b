"""The Snakemake workflow: its graph, rules, config schema, and an end-to-end run on a small copy."""

from __future__ import annotations

import json
import math
import pathlib
import re
import shutil
import sys

import pytest
import yaml
from conftest import BUILT_OVERRIDES, BUILT_SIZES, REPO_ROOT, git, run_in

from aimed.pipeline import EVAL_SPLITS, REPORT_FORMATS, STAGES, stage_outputs

RULES_DIR = REPO_ROOT / "workflow" / "rules"
SCHEMA = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"
EXTRA_RULES = ("prepare_data",)  # rules that are not aimed stages
EVAL_FUNC_COLUMN = "sparse categorical ce"  # the example evaluator's one eval func (src/evaluation.py)


# ----------------------------------------------------------------------------- helpers


def workflow_config(project: pathlib.Path) -> dict:
    return yaml.safe_load((project / "config" / "config.yaml").read_text())


def stage_splits(stage: str):
    """The splits a stage runs for: every evaluation split for evaluate, else one job per run."""
    return EVAL_SPLITS if "{split}" in STAGES[stage].command else (None,)


def stage_log(stage: str, run: str, split=None) -> str:
    return f"logs/{run}/{STAGES[stage].rule}{'_' + split if split else ''}.log"


def job_stats(output: str) -> dict:
    """The first 'Job stats' table of a Snakemake dry run, as {rule: count}."""
    match = re.search(r"Job stats:\s*\njob\s+count\s*\n[-\s]+\n(.*?)\ntotal\s+(\d+)", output, re.S)
    assert match, f"no job stats in the Snakemake output:\n{output}"
    counts = {}
    for line in match.group(1).splitlines():
        name, count = line.split()
        counts[name] = int(count)
    assert sum(counts.values()) == int(match.group(2))
    return counts


def detailed_summary(output: str) -> dict:
    """``snakemake --detailed-summary`` as {output file: rule}."""
    lines = output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("output_file\t"))
    columns = lines[header].split("\t")
    rows = [dict(zip(columns, line.split("\t"))) for line in lines[header + 1 :] if "\t" in line]
    return {row["output_file"]: row["rule"] for row in rows}


def rule_blocks(path: pathlib.Path) -> dict:
    """{rule name: its text} of a .smk file."""
    text = path.read_text()
    starts = list(re.finditer(r"^(?:rule|checkpoint) (\w+):", text, re.M))
    return {
        m.group(1): text[m.start() : starts[i + 1].start() if i + 1 < len(starts) else len(text)]
        for i, m in enumerate(starts)
    }


def stage_rule_files():
    return sorted(p for p in RULES_DIR.glob("*.smk") if p.name != "common.smk")


# ----------------------------------------------------------------------------- graph


def test_dry_run_lists_every_job(project_copy, run_snakemake):
    proc = run_snakemake(project_copy, "--dry-run", "--quiet", "rules", "--nocolor", "--cores", "1", check=True)
    runs = workflow_config(project_copy)["runs"]
    assert len(runs) == 2
    assert job_stats(proc.stdout) == {
        "prepare_data": 1,
        "validate_data": 2,
        "check_preprocessing": 2,
        "train": 2,
        "export": 2,
        "evaluate": 4,
        "all": 1,
    }


def test_shell_commands_are_the_stage_commands(project_copy, run_snakemake, shrunk):
    """Every job calls the aimed CLI exactly as STAGES says, logging to logs/<run>/<stage>.log."""
    proc = run_snakemake(project_copy, "--dry-run", "--printshellcmds", "--nocolor", "--cores", "1", check=True)
    found = {
        line.split("Shell command:", 1)[1].strip()
        for line in proc.stdout.splitlines()
        if "Shell command:" in line and not line.rstrip().endswith("None")
    }
    expected = {
        "python workflow/scripts/prepare_mnist.py --sample data/mnist_sample.npz --out datasets/mnist "
        f"--limit-train {shrunk['train']} --limit-validation {shrunk['validation']} --limit-test {shrunk['test']} "
        "> logs/prepare_data.log 2>&1"
    }
    for run in workflow_config(project_copy)["runs"]:
        for name in STAGES:
            for split in stage_splits(name):
                command = STAGES[name].command.format(run=run, split=split)
                expected.add(f"{command} > {stage_log(name, run, split)} 2>&1")
    assert found == expected


def test_rule_outputs_are_the_pipeline_stages(project_copy, run_snakemake):
    """The workflow's files, and the rule making each, equal aimed.pipeline.STAGES."""
    proc = run_snakemake(project_copy, "--detailed-summary", "--nocolor", check=True)
    expected = {"datasets/mnist": "prepare_data"}
    for run in workflow_config(project_copy)["runs"]:
        for name, stage in STAGES.items():
            for split in stage_splits(name):
                wildcards = {"run": run, "split": split} if split else {"run": run}
                expected.update({path: stage.rule for path in stage_outputs(name, **wildcards)})
    summary = detailed_summary(proc.stdout)
    assert summary == expected
    # Training checkpoints must never be an output: Snakemake deletes the outputs of failed jobs.
    assert not [path for path in summary if path.startswith("state/")]


def test_rules_and_rule_files_match_stages(project_copy, run_snakemake):
    proc = run_snakemake(project_copy, "--list-rules", "--nocolor", check=True)
    listed = {line.strip() for line in proc.stdout.splitlines() if re.fullmatch(r"\s*\w+\s*", line)}
    stage_rules = {s.rule for s in STAGES.values()} | set(EXTRA_RULES)
    # evaluate.smk also holds the evaluate rule of runs whose report is another format.
    other_formats = {f"{STAGES['evaluate'].rule}_{f}" for f in REPORT_FORMATS[1:]}
    assert listed == stage_rules | other_formats | {"all"}
    assert {p.stem for p in stage_rule_files()} == stage_rules


@pytest.mark.parametrize("path", stage_rule_files(), ids=lambda p: p.name)
def test_rule_file_has_one_rule_with_log_and_message(path):
    blocks = rule_blocks(path)
    assert list(blocks) == [path.stem], f"{path.name} must define exactly the rule {path.stem}"
    body = blocks[path.stem]
    for directive in ("input", "output", "log", "message", "shell"):
        assert re.search(rf"^\s+{directive}:", body, re.M), f"rule {path.stem} has no {directive}:"


def test_report_captions_exist():
    report_dir = REPO_ROOT / "workflow" / "report"
    assert (report_dir / "workflow.rst").is_file()
    for stage in STAGES.values():
        if stage.reports:
            assert (report_dir / f"{stage.rule}.rst").is_file(), f"no caption for the reports of {stage.name}"


def test_rules_take_resources_from_the_workflow_config():
    body = rule_blocks(RULES_DIR / "train.smk")["train"]
    assert re.search(r"^\s+threads:", body, re.M)
    assert re.search(r'^\s+retries: stage_retries\("train"\)\s*$', body, re.M)
    for path in stage_rule_files():
        block = rule_blocks(path)[path.stem]
        assert re.search(rf'^\s+resources:\s*\n\s+\*\*stage_resources\("{path.stem}"\),?\s*$', block, re.M)
    resources = _validate(yaml.safe_load((REPO_ROOT / "config" / "config.yaml").read_text()))["resources"]
    assert resources["train"]["gpu"] == 1
    assert not [r for r, v in resources.items() if isinstance(v, dict) and r != "train" and "gpu" in v]


# ----------------------------------------------------------------------------- config schema


def _validate(config: dict) -> dict:
    from snakemake.utils import validate

    validate(config, str(SCHEMA))
    return config


def test_schema_documents_every_key():
    def walk(schema, where):
        for key, prop in schema.get("properties", {}).items():
            assert prop.get("description"), f"{where}{key} has no description"
            assert "default" in prop, f"{where}{key} has no default"
            walk(prop, f"{where}{key}.")

    walk(yaml.safe_load(SCHEMA.read_text()), "")


def test_schema_accepts_the_real_config_and_fills_defaults():
    real = _validate(yaml.safe_load((REPO_ROOT / "config" / "config.yaml").read_text()))
    assert real["runs"] == ["mnist-tf", "mnist-gen"]
    minimal = _validate({"runs": ["mnist-tf"]})
    assert minimal["datasets"]["mnist"] == {
        "script": "workflow/scripts/prepare_mnist.py",
        "sample": "data/mnist_sample.npz",
        "path": "datasets/mnist",
        "limit_train": None,
        "limit_validation": None,
        "limit_test": None,
    }


@pytest.mark.parametrize(
    "config",
    [
        {"runs": "mnist-tf"},
        {"runs": []},
        {"runs": ["mnist-tf", "mnist-tf"]},
        {"runs": ["../mnist-tf"]},
        {"runs": ["mnist-tf"], "datasets": {"mnist": {"limit_train": 0}}},
        {"runs": ["mnist-tf"], "datasets": {"mnist": {"limit_test": "32"}}},
        {"runs": ["mnist-tf"], "datasets": {"mnist": {"sampel": "data/x.npz"}}},
        {"run": ["mnist-tf"]},
        {"runs": ["mnist-tf"], "train_threads": 0},
    ],
    ids=repr,
)
def test_schema_rejects_bad_config(config):
    from snakemake.exceptions import WorkflowError

    with pytest.raises(WorkflowError, match="Error validating config file"):
        _validate(config)


def test_workflow_rejects_runs_given_as_a_string(project_copy, run_snakemake):
    (project_copy / "config" / "config.yaml").write_text("runs: mnist-tf\n")
    proc = run_snakemake(project_copy, "--dry-run", "--cores", "1")
    assert proc.returncode != 0
    assert "Error validating config file" in proc.stdout
    assert "'mnist-tf' is not of type 'array'" in proc.stdout


def test_workflow_rejects_a_run_without_config(project_copy, run_snakemake):
    (project_copy / "config" / "config.yaml").write_text("runs: [mnist-tf, no-such-run]\n")
    proc = run_snakemake(project_copy, "--dry-run", "--cores", "1")
    assert proc.returncode != 0
    assert "runs/no-such-run/config.yaml" in proc.stdout
    known = ", ".join(sorted(p.parent.name for p in (project_copy / "runs").glob("*/config.yaml")))
    assert f"Known runs: {known}" in proc.stdout


def test_workflow_config_can_pick_one_run(project_copy, run_snakemake):
    (project_copy / "config" / "config.yaml").write_text("runs: [mnist-gen]\n")
    proc = run_snakemake(project_copy, "--dry-run", "--quiet", "rules", "--nocolor", "--cores", "1", check=True)
    assert job_stats(proc.stdout) == {
        "prepare_data": 1,
        "validate_data": 1,
        "check_preprocessing": 1,
        "train": 1,
        "export": 1,
        "evaluate": 2,
        "all": 1,
    }


# ----------------------------------------------------------------------------- end to end


def _savedmodel_test_predictions(project: pathlib.Path, run: str):
    """{data_id: softmax row} of the exported SavedModel on the run's test split, preprocessed as
    the pipeline does (the run's own DataLoader and Preprocessor)."""
    import numpy as np
    import tensorflow as tf

    from aimed.data import eval_split, split_batch, take
    from aimed.run import resolve_run

    ctx = resolve_run(run, project)
    prepared = eval_split(ctx.data_loader(), ctx.preprocessor(), "test")
    n = prepared.n
    xs, ids = [], []
    for batch in take(prepared.batches, prepared.n_iter):
        x, _, third = split_batch(batch)
        rows = min(len(x), n - len(ids))
        xs.append(np.asarray(x)[:rows])
        ids += prepared.ids.take(rows, third)
    x = np.concatenate(xs)

    loaded = tf.saved_model.load(str(project / "results" / run / "export" / "savedmodel"))
    signature = loaded.signatures["serving_default"]
    _, inputs = signature.structured_input_signature
    assert len(inputs) == 1, f"serving signature has inputs {list(inputs)}"
    (input_name, spec), = inputs.items()
    outputs = signature(**{input_name: tf.constant(x, dtype=spec.dtype)})
    assert len(outputs) == 1, f"serving signature has outputs {list(outputs)}"
    probs = next(iter(outputs.values())).numpy()
    assert probs.shape == (n, 10)
    return dict(zip(ids, probs))


def _check_model_card(project: pathlib.Path, run: str, history, data_fingerprint: str) -> None:
    """The export's model card describes the best epoch of ``history`` by the run's export metric,
    the validated data, the software and the commit the run was made from."""
    import keras
    import tensorflow as tf

    import aimed

    results = project / "results" / run
    card = json.loads((results / "export" / "model_card.json").read_text())
    export = yaml.safe_load((project / "runs" / run / "config.yaml").read_text())["export"]
    metric, mode = export["metric"], export["mode"]
    best = history[metric].idxmin() if mode == "min" else history[metric].idxmax()
    best_row = history.loc[best]

    assert card["run"] == run
    assert card["best_epoch"] == int(best_row["epoch"])
    assert card["export_metric"] == {"name": metric, "mode": mode, "value": pytest.approx(best_row[metric])}
    assert card["metrics"] == pytest.approx(best_row.drop("epoch").to_dict())
    assert card["epochs_trained"] == len(history) == BUILT_OVERRIDES["epochs"]
    assert card["data_fingerprint"] == data_fingerprint
    assert json.loads((results / "validate_data" / "manifest.json").read_text())["fingerprint"] == data_fingerprint
    assert card["signature"] == {"inputs": {"image": {"shape": [None, 28 * 28], "dtype": "float32"}},
                                 "outputs": {"output_0": {"shape": [None, 10], "dtype": "float32"}}}
    assert card["versions"] == {"aimed": aimed.__version__, "tensorflow": tf.__version__, "keras": keras.__version__}
    # built_template ran the workflow on its commit "project", then committed the results as "run 1".
    assert card["git_commit"] == git(project, "rev-parse", "HEAD~1").strip()
    assert git(project, "log", "-1", "--format=%s", card["git_commit"]).strip() == "project"
    train_summary = json.loads((results / "train" / "summary.json").read_text())
    assert train_summary["best"]["epoch"] == card["best_epoch"]
    assert card["mlflow_run_id"] == train_summary.get("mlflow_run_id")

    exported_config = yaml.safe_load((results / "export" / "config.yaml").read_text())
    assert exported_config["export"] == export
    assert {k: exported_config[k] for k in ("epochs", "batch_size")} == {
        k: BUILT_OVERRIDES[k] for k in ("epochs", "batch_size")}


@pytest.mark.slow
def test_end_to_end(built_project):
    """The session's full Snakemake run of the shrunken example (a copy of ``built_template``): every artifact
    and its content.

    ``test_rerun_matrix`` checks that this run leaves nothing to do, and ``test_report_html``
    builds its HTML report.
    """
    import numpy as np
    import pandas as pd

    project = built_project  # a copy: loading the run's components here writes bytecode beside them
    sizes, epochs = BUILT_SIZES, BUILT_OVERRIDES["epochs"]
    dataset = project / "datasets" / "mnist"
    for split in ("train", "validation", "test"):
        assert len(pd.read_csv(dataset / split / "labels.csv")) == sizes[split]
    test_labels = pd.read_csv(dataset / "test" / "labels.csv").set_index("image name")["label"]

    for run in workflow_config(project)["runs"]:
        results = project / "results" / run
        for name in STAGES:
            for split in stage_splits(name):
                wildcards = {"run": run, "split": split} if split else {"run": run}
                for path in stage_outputs(name, **wildcards):
                    assert (project / path).exists(), f"missing output {path}"
                assert (project / stage_log(name, run, split)).is_file()
        assert (project / "state" / run).is_dir(), "training state should live in state/<run>/"

        report = json.loads((results / "validate_data" / "report.json").read_text())
        assert report["ok"] is True, report.get("errors")
        for split in ("train", "validation", "test"):
            assert report["splits"][split]["n"] == sizes[split]
            assert report["splits"][split]["read"] == sizes[split]

        history = pd.read_csv(results / "train" / "history.csv")
        assert len(history) == epochs
        assert {"loss", "val_loss"} <= set(history.columns)
        assert np.isfinite(history[["loss", "val_loss"]].to_numpy()).all()

        assert (results / "export" / "savedmodel" / "saved_model.pb").is_file()
        _check_model_card(project, run, history, report["data_fingerprint"])

        for split in EVAL_SPLITS:
            rows = pd.read_csv(results / "evaluate" / split / "report.csv")
            assert len(rows) == sizes[split]
            assert {"data_id", "y_true", "y_pred", "pred_class", "confidence", EVAL_FUNC_COLUMN} <= set(rows.columns)
            assert rows["data_id"].map(lambda s: bool(re.fullmatch(r"image_\d+\.jpg", str(s)))).all()
            assert rows["data_id"].is_unique
            assert rows["y_pred"].notna().all()
            assert ((rows["confidence"] > 0) & (rows["confidence"] <= 1)).all()
            assert (rows[EVAL_FUNC_COLUMN] >= 0).all()
            json.loads((results / "evaluate" / split / "summary.json").read_text())

        # The test report names the real images, with their labels, and the exported SavedModel
        # reproduces its predictions.
        rows = pd.read_csv(results / "evaluate" / "test" / "report.csv").set_index("data_id")
        assert set(rows.index) == set(test_labels.index)
        assert (rows["y_true"].astype(int) == test_labels.loc[rows.index]).all()

        probs = _savedmodel_test_predictions(project, run)
        assert set(probs) == set(rows.index)
        for data_id, row in rows.iterrows():
            p = probs[data_id]
            assert int(row["pred_class"]) == int(np.argmax(p)), data_id
            # y_pred holds the model output (the softmax row for this classifier).
            y_pred = np.asarray(json.loads(row["y_pred"]) if isinstance(row["y_pred"], str) else row["y_pred"])
            if y_pred.size == p.size:
                np.testing.assert_allclose(y_pred.reshape(-1), p, atol=1e-5, err_msg=data_id)
            else:
                assert int(y_pred.reshape(-1)[0]) == int(np.argmax(p)), data_id
            assert math.isclose(row["confidence"], float(np.max(p)), abs_tol=1e-5), data_id
            expected_ce = -math.log(min(max(float(p[int(row["y_true"])]), 1e-7), 1 - 1e-7))
            assert math.isclose(row[EVAL_FUNC_COLUMN], expected_ce, rel_tol=1e-4, abs_tol=1e-4), data_id


# ----------------------------------------------------------------------------- a broken dataset

BROKEN_IMAGE = "datasets/mnist/test/image_3.jpg"  # in the test split, which no stage before evaluate reads
AFTER_VALIDATION = ("check-preprocessing", "train", "export", "evaluate")


@pytest.fixture(scope="module")
def broken_dataset_run(train_template, tmp_path_factory):
    """``(project, snakemake process)``: a copy of the training template whose dataset has a corrupt
    JPEG, after one ``snakemake`` run from no results."""
    project = tmp_path_factory.mktemp("broken_dataset") / "project"
    shutil.copytree(train_template, project, symlinks=True)
    shutil.rmtree(project / "results")  # the template's own validations, made before the JPEG broke
    (project / BROKEN_IMAGE).write_bytes(b"this is not a JPEG" * 20)
    proc = run_in(project, sys.executable, "-m", "snakemake", "--cores", "1", "--resources", "gpu=1", "--nocolor",
                  timeout=300, check=False)
    return project, proc


@pytest.mark.slow
def test_broken_dataset_stops_the_workflow_at_validate_data(broken_dataset_run):
    project, proc = broken_dataset_run
    assert proc.returncode != 0, proc.stdout[-5000:]
    assert "Error in rule validate_data" in proc.stdout
    bad_file = "image 'image_3.jpg' cannot be decoded"
    assert bad_file in proc.stdout, proc.stdout[-5000:]  # show-failed-logs: Snakemake's output names it
    started = re.findall(r"^Job \d+: ([\w-]+):", proc.stdout, re.M)  # each job's message names its stage
    assert started == ["validate-data"], proc.stdout[-5000:]  # keep-going is off: the first failure stops the run

    validated = [run for run in workflow_config(project)["runs"]
                 if (project / stage_log("validate-data", run)).is_file()]
    assert validated, f"no validate-data log:\n{proc.stdout[-5000:]}"
    for run in validated:
        assert bad_file in (project / stage_log("validate-data", run)).read_text()
        report = json.loads((project / "results" / run / "validate_data" / "report.json").read_text())
        assert report["ok"] is False
        assert [e for e in report["errors"] if bad_file in e and "split 'test'" in e], report["errors"]
    for run in workflow_config(project)["runs"]:
        for name in AFTER_VALIDATION:
            for split in stage_splits(name):
                wildcards = {"run": run, "split": split} if split else {"run": run}
                made = [path for path in stage_outputs(name, **wildcards) if (project / path).exists()]
                assert made == [], f"{name} ran after validate-data failed"
        assert not (project / "state" / run).exists(), "training started after validate-data failed"


@pytest.mark.slow
def test_failed_validation_is_not_up_to_date(broken_dataset_run, run_snakemake):
    """After a failed validation, the next ``snakemake`` must validate the data again before anything else."""
    project, _ = broken_dataset_run
    proc = run_snakemake(project, "--dry-run", "--quiet", "rules", "--nocolor", "--cores", "1", check=True)
    assert job_stats(proc.stdout)["validate_data"] == len(workflow_config(project)["runs"]), proc.stdout[-5000:]
