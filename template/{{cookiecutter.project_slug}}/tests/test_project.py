"""The project's own checks, through aimed's public API and command line.

The run configs load, the DataLoader reads every split of a small sample dataset, the
preprocessed batches fit the compiled model (`aimed validate-data` and `aimed check-preprocessing`,
as the pipeline runs them), the eval functions agree per sample and per batch, and the workflow
plans every stage. The checks run in a copy of `src/` and `runs/`, so nothing is written into
the project.
"""

import json
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml

from aimed import load_config

PROJECT = pathlib.Path(__file__).resolve().parents[1]
RUNS = sorted(p.parent.name for p in (PROJECT / "runs").glob("*/config.yaml"))
#: The aimed command of this Python environment (its bin folder), else the one on PATH.
AIMED = shutil.which("aimed", path=str(pathlib.Path(sys.executable).parent)) or shutil.which("aimed") or "aimed"


def _write_dataset(dataset: dict, out: pathlib.Path) -> None:
    """Write the dataset as rule prepare_data does (config/config.yaml, datasets), a small one where the script allows."""
    command = [sys.executable, str(PROJECT / dataset["script"]), "--out", str(out)]
    if dataset.get("sample"):
        command += ["--sample", str(PROJECT / dataset["sample"])]
    # The template's sample script makes a few images quickly; another script gets the config's limits.
    template_script = pathlib.Path(dataset["script"]).name == "make_sample_data.py"
    limits = {"train": 40, "validation": 20, "test": 20} if template_script else {}
    for split in ("train", "validation", "test"):
        limit = limits.get(split) or dataset.get(f"limit_{split}")
        if limit:
            command += [f"--limit-{split}", str(limit)]
    subprocess.run(command, check=True)


@pytest.fixture(scope="module")
def sample_project(tmp_path_factory):
    """The project's components and runs in a folder of their own, over the data each run reads:
    the dataset of rule prepare_data written afresh, any other data_dir linked from the project."""
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(PROJECT / "src", root / "src")
    shutil.copytree(PROJECT / "runs", root / "runs")
    datasets = (yaml.safe_load((PROJECT / "config" / "config.yaml").read_text()) or {}).get("datasets") or {}
    made = {pathlib.Path(d["path"]): d for d in datasets.values()}
    for run in RUNS:
        data_dir = pathlib.Path(load_config(PROJECT / "runs" / run / "config.yaml").data_dir)
        out = root / data_dir
        if out.exists():
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        if data_dir in made:
            _write_dataset(made[data_dir], out)
        else:
            out.symlink_to(data_dir if data_dir.is_absolute() else PROJECT / data_dir)
    return root


def _aimed(project: pathlib.Path, *args: str) -> None:
    result = subprocess.run([AIMED, *args], cwd=project, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"aimed {' '.join(args)} exited {result.returncode}:\n{result.stderr[-5000:]}"


@pytest.mark.parametrize("run", RUNS)
def test_the_data_reads_and_the_batches_fit_the_model(run, sample_project):
    _aimed(sample_project, "validate-data", run)
    _aimed(sample_project, "check-preprocessing", run)
    report = json.loads((sample_project / "results" / run / "check_preprocessing" / "report.json").read_text())
    assert report["ok"], report
    outputs = report["model"]["outputs"]
    assert [o["shape"] for o in outputs] == [[None, {{ cookiecutter.n_classes }}]]


@pytest.mark.parametrize("run", RUNS)
def test_eval_functions_work_per_sample_and_per_batch(run):
    sys.path.insert(0, str(PROJECT / "src"))
    try:
        from evaluation import Evaluator
    finally:
        sys.path.remove(str(PROJECT / "src"))
    evaluator = Evaluator(load_config(PROJECT / "runs" / run / "config.yaml"))
    y_true = np.array([0, 1])
    y_pred = np.full((2, {{ cookiecutter.n_classes }}), 1.0 / {{ cookiecutter.n_classes }}, dtype=np.float32)
    for name, func in evaluator.get_eval_funcs().items():
        batch = np.asarray(func(y_true, y_pred)).reshape(-1)
        single = [float(np.asarray(func(t, p)).reshape(-1)[0]) for t, p in zip(y_true, y_pred)]
        assert np.allclose(batch, single), name


def test_the_workflow_plans_every_stage_of_every_run():
    command = [sys.executable, "-m", "snakemake", "--dry-run", "--forceall", "--quiet", "rules", "--cores", "1"]
    result = subprocess.run(command, cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for rule in ("validate_data", "check_preprocessing", "train", "export", "evaluate"):
        assert rule in result.stdout
