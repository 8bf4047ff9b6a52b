"""The project's own checks: the configs load, the components resolve and fit together."""

import pathlib
import subprocess
import sys

import numpy as np
import pytest

from aimed.config import load_config
from aimed.data import batched_split, eval_split, split_batch, take
from aimed.loading import check_components
from aimed.run import resolve_run

PROJECT = pathlib.Path(__file__).resolve().parents[1]
RUNS = sorted(p.parent.name for p in (PROJECT / "runs").glob("*/config.yaml"))


@pytest.fixture(scope="module")
def sample_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "sample"
    subprocess.run([sys.executable, str(PROJECT / "scripts" / "make_sample_data.py"), "--out", str(out),
                    "--limit-train", "40", "--limit-validation", "20", "--limit-test", "20"], check=True)
    return out


@pytest.mark.parametrize("run", RUNS)
def test_run_config_is_valid_and_its_components_resolve(run):
    config = load_config(PROJECT / "runs" / run / "config.yaml")
    check_components(config, PROJECT)


@pytest.mark.parametrize("run", RUNS)
def test_batches_fit_the_model(run, sample_data):
    ctx = resolve_run(run, PROJECT)
    loader = ctx.component_class("data_loader_class")(ctx.config, sample_data)
    model = ctx.model_builder().get_compiled_model()
    for split in ("train", "validation", "test"):
        if split == "test":  # read as evaluation reads it: ids set aside
            prepared = eval_split(loader, ctx.preprocessor(), split)
            batches, n, n_iter = prepared.batches, prepared.n, prepared.n_iter
        else:
            batches, n, n_iter = batched_split(loader, None, ctx.preprocessor(), split)
        x, y, _ = split_batch(next(iter(take(batches, 1))))
        assert x.shape[1:] == tuple(model.inputs[0].shape[1:])
        scores = model.predict_on_batch(x)
        assert scores.shape == (len(x), {{ cookiecutter.n_classes }})
        assert np.allclose(scores.sum(axis=1), 1, atol=1e-4)
        assert n_iter * ctx.config.batch_size >= n


@pytest.mark.parametrize("run", RUNS)
def test_eval_functions_work_per_sample_and_per_batch(run):
    evaluator = resolve_run(run, PROJECT).evaluator()
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
