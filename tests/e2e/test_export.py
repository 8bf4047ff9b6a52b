"""export: the best epoch of the recorded history, as a SavedModel, a .keras file and a model card.

The end-to-end cases train the tf.data example with a test-only model builder (appended to the
project copy's ``src/models.py``) whose learning rate makes the validation curves turn, and which
logs ``neg_loss``, a metric whose values are all negative. Each exported model is evaluated
again in this process on the validation split, so "the best epoch was exported" is checked on
the weights, not only on the model card.
"""

from __future__ import annotations

import json
import math
import pathlib
import shutil
import subprocess
import sys
from typing import Dict, Tuple

import pandas as pd
import pytest
import yaml
from conftest import check_aimed, update_yaml

from aimed.errors import StageFailed
from aimed.exporting import best_epoch

RUN = "mnist-tf"

TEST_BUILDER = '''

import keras  # noqa: E402


@keras.saving.register_keras_serializable(package="aimed_tests")
def neg_loss(y_true, y_pred):
    """Minus the cross-entropy: every value is negative, and higher is better."""
    return -tfk.losses.sparse_categorical_crossentropy(y_true, y_pred)


class ExportTestModelBuilder(ModelBuilder):
    """Test only: Adam with model_builder.learning_rate, logging neg_loss besides the accuracy."""

    def get_compiled_model(self):
        model = super().get_compiled_model()
        model.compile(optimizer=tfk.optimizers.Adam(self.learning_rate),
                      loss=tfk.losses.SparseCategoricalCrossentropy(),
                      metrics=[tfk.metrics.SparseCategoricalAccuracy(), neg_loss])
        return model

    def _load_params(self, config):
        super()._load_params(config)
        self.learning_rate = config.model_builder.learning_rate
'''

#: With this learning rate the 5-epoch validation curves of the shrunken run are not monotonic.
OVERRIDES = {"model_builder_class": "models.ExportTestModelBuilder", "model_builder": {"learning_rate": 0.01}}

CASES = {
    "val_loss-min": ("val_loss", "min"),
    "accuracy-max": ("val_sparse_categorical_accuracy", "max"),
    "neg_loss-max": ("val_neg_loss", "max"),
}


def state_listing(project: pathlib.Path) -> Dict[str, Tuple[int, int]]:
    folder = project / "state" / RUN / "train"
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def new_project(template: pathlib.Path, dest: pathlib.Path, overrides=None) -> pathlib.Path:
    """A copy of the training template with the test builder in src/models.py and ``overrides`` applied."""
    shutil.copytree(template, dest, symlinks=True)
    with (dest / "src" / "models.py").open("a") as f:
        f.write(TEST_BUILDER)
    update_yaml(dest / "runs" / RUN / "config.yaml", {**OVERRIDES, **(overrides or {})})
    return dest


def run_all(commands: Dict[str, list], timeout: float = 300) -> None:
    """Run ``{name: (project, aimed args)}`` at once (each is mostly TensorFlow's start-up); fail on any error."""
    jobs = {name: subprocess.Popen(["aimed", *args], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True) for name, (project, args) in commands.items()}
    for name, job in jobs.items():
        out, _ = job.communicate(timeout=timeout)
        if job.returncode != 0:
            pytest.fail(f"{name}: aimed {' '.join(commands[name][1])} exited with {job.returncode}:\n{out[-10000:]}")


@pytest.fixture(scope="module")
def exported(train_template, tmp_path_factory) -> Dict[str, dict]:
    """``{case: {"project", "state_before_export"}}``: a project trained and exported per export metric."""
    made = {}
    for case, (metric, mode) in CASES.items():
        project = new_project(train_template, tmp_path_factory.mktemp(case) / "project",
                              {"export": {"metric": metric, "mode": mode}})
        made[case] = {"project": project}
    run_all({case: (m["project"], ["train", RUN]) for case, m in made.items()})
    for m in made.values():
        m["state_before_export"] = state_listing(m["project"])
    run_all({case: (m["project"], ["export", RUN]) for case, m in made.items()})
    return made


def evaluate_export(project: pathlib.Path) -> Dict[str, float]:
    """The exported model.keras evaluated on the validation split, in this process."""
    import keras

    from aimed.data import batched_split
    from aimed.run import resolve_run

    ctx = resolve_run(RUN, project)
    ctx.model_builder()  # imports src/models.py, registering neg_loss
    model = keras.models.load_model(project / "results" / RUN / "export" / "model.keras")
    batches, _, n_iter = batched_split(ctx.data_loader(), None, ctx.preprocessor(), "validation")
    return {f"val_{k}": float(v) for k, v in model.evaluate(batches, steps=n_iter, return_dict=True, verbose=0).items()}


# ----------------------------------------------------------------------------- best_epoch on a history


def test_best_epoch_skips_nan_and_handles_negative_values(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text(
        "epoch,val_loss,val_neg,val_acc,steps,broken\n"
        "1,nan,-3.0,0.1,10,nan\n"
        "2,0.5,-1.5,,30,nan\n"
        "3,0.7,-2.0,0.3,20,\n"
        "4,0.5,-1.5,0.3,30,inf\n"
        "5,inf,nan,0.2,5,-inf\n"
    )
    assert best_epoch(path, "val_loss", "min")["epoch"] == 2  # NaN and inf skipped; first of a tie
    assert best_epoch(path, "val_loss", "max")["epoch"] == 3
    neg = best_epoch(path, "val_neg", "max")
    assert (neg["epoch"], neg["value"]) == (2, -1.5)
    assert best_epoch(path, "val_neg", "min") == {"epoch": 1, "value": -3.0, "metrics": pytest.approx(
        {"val_loss": math.nan, "val_neg": -3.0, "val_acc": 0.1, "steps": 10.0, "broken": math.nan}, nan_ok=True)}
    assert best_epoch(path, "val_acc", "max")["epoch"] == 3  # an empty cell is NaN
    assert best_epoch(path, "steps", "min")["epoch"] == 5  # a column of integers
    with pytest.raises(StageFailed, match="never finite"):
        best_epoch(path, "broken", "min")
    with pytest.raises(StageFailed, match="val_loss, val_neg, val_acc"):
        best_epoch(path, "val_f1", "max")


# ----------------------------------------------------------------------------- end to end


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_export_holds_the_best_epoch(exported, case):
    metric, mode = CASES[case]
    project = exported[case]["project"]
    history = pd.read_csv(project / "results" / RUN / "train" / "history.csv")
    values = history.set_index("epoch")[metric]
    expected = int(values.idxmin() if mode == "min" else values.idxmax())  # the first one on ties
    card = json.loads((project / "results" / RUN / "export" / "model_card.json").read_text())
    print(f"\n{case}: {metric} by epoch {values.round(5).to_dict()}; best epoch {expected}")
    assert card["best_epoch"] == expected
    assert card["export_metric"] == {"name": metric, "mode": mode, "value": values[expected]}
    if case == "neg_loss-max":
        assert (values < 0).all()
    evaluated = evaluate_export(project)
    assert evaluated[metric] == pytest.approx(values[expected], rel=1e-5), evaluated
    assert evaluated["val_loss"] == pytest.approx(history.set_index("epoch")["val_loss"][expected], rel=1e-5)


@pytest.mark.slow
def test_export_never_deletes_checkpoints(exported):
    result = exported["val_loss-min"]
    after = state_listing(result["project"])
    assert after == result["state_before_export"]
    assert any(name.startswith("epoch-") for name in after) and any(name.startswith("best-") for name in after)


@pytest.mark.slow
def test_savedmodel_signature_and_model_card(exported):
    import tensorflow as tf

    project = exported["val_loss-min"]["project"]
    export = project / "results" / RUN / "export"
    serve = tf.saved_model.load(str(export / "savedmodel")).signatures["serving_default"]
    assert list(serve.structured_input_signature[1]) == ["image"]
    scores = serve(image=tf.zeros([2, 784]))["output_0"]
    assert scores.shape == (2, 10)

    card = json.loads((export / "model_card.json").read_text())
    validation = json.loads((project / "results" / RUN / "validate_data" / "report.json").read_text())
    assert card["run"] == RUN and card["epochs_trained"] == 5
    assert set(card["metrics"]) == {"loss", "sparse_categorical_accuracy", "neg_loss", "val_loss",
                                    "val_sparse_categorical_accuracy", "val_neg_loss"}
    assert card["data_fingerprint"] == validation["data_fingerprint"] and card["data_fingerprint"]
    assert card["versions"]["tensorflow"] == tf.__version__ and card["versions"]["aimed"]
    assert list(card["signature"]["inputs"]) == ["image"] and list(card["signature"]["outputs"]) == ["output_0"]
    assert card["git_commit"] is None  # the project copy is not a git repository

    resolved = yaml.safe_load((export / "config.yaml").read_text())
    assert resolved["seed"] == 101 and resolved["deterministic"] is True  # defaults filled in
    assert resolved["export"] == {"metric": "val_loss", "mode": "min"}


@pytest.mark.slow
def test_model_card_names_the_git_commit(exported, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(exported["val_loss-min"]["project"], project, symlinks=True)
    git = ["git", "-c", "user.name=aimed tests", "-c", "user.email=tests@aimed.invalid"]
    for args in (["init", "-q"], ["add", "src", "runs", "config"], ["commit", "-q", "-m", "project"]):
        subprocess.run(git + args, cwd=project, check=True, capture_output=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, check=True, capture_output=True, text=True)
    check_aimed(project, "export", RUN)
    card = json.loads((project / "results" / RUN / "export" / "model_card.json").read_text())
    assert card["git_commit"] == head.stdout.strip()


@pytest.mark.slow
def test_unlogged_export_metric_fails_before_the_first_epoch(train_template, exported, tmp_path):
    fresh = new_project(train_template, tmp_path / "fresh", {"export": {"metric": "val_f1"}})
    # A typo in export.metric must not cost a trained run its resume state either.
    trained = tmp_path / "trained"
    shutil.copytree(exported["val_loss-min"]["project"], trained, symlinks=True)
    update_yaml(trained / "runs" / RUN / "config.yaml", {"export": {"metric": "val_f1"}})
    trained_state = (trained / "state" / RUN / "train" / "state.json").read_text()

    jobs = {project: subprocess.Popen(["aimed", "train", RUN], cwd=project, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True) for project in (fresh, trained)}
    for project, job in jobs.items():
        stdout, stderr = job.communicate(timeout=180)
        assert job.returncode == 2, stderr[-3000:]
        message = stderr.strip().splitlines()[-1]
        assert "export.metric" in message and "'val_f1'" in message, message
        for name in ("loss", "val_loss", "val_sparse_categorical_accuracy", "val_neg_loss"):
            assert name in message
        assert not any(line.startswith("epoch ") for line in stdout.splitlines())
        assert not (project / "state" / RUN / "archive").exists()
    state = fresh / "state" / RUN / "train" / "state.json"
    assert not state.exists() or json.loads(state.read_text())["epoch"] == 0
    assert (trained / "state" / RUN / "train" / "state.json").read_text() == trained_state


# ----------------------------------------------------------------------------- custom objects, never registered

CUSTOM_BUILDER = '''

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402


def smoothed_ce(y_true, y_pred):
    """A plain-function loss on logits, never registered with keras.saving."""
    one_hot = tf.one_hot(tf.cast(tf.reshape(y_true, [-1]), tf.int32), 10)
    return keras.losses.categorical_crossentropy(one_hot * 0.9 + 0.01, y_pred, from_logits=True)


def top_logit(y_true, y_pred):
    """A plain-function metric."""
    return tf.reduce_max(y_pred, axis=-1)


class HitRate(keras.metrics.Metric):
    """A metric class of the user's module."""

    def __init__(self, name="hit_rate", **kwargs):
        super().__init__(name=name, **kwargs)
        self.hits = self.add_variable(shape=(), initializer="zeros", name="hits")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        predicted = tf.cast(tf.argmax(y_pred, axis=-1), tf.float32)
        hit = tf.cast(tf.equal(predicted, tf.cast(tf.reshape(y_true, [-1]), tf.float32)), tf.float32)
        self.hits.assign_add(tf.reduce_sum(hit))
        self.count.assign_add(tf.cast(tf.size(hit), tf.float32))

    def result(self):
        return self.hits / tf.maximum(self.count, 1.0)


class Scale(keras.layers.Layer):
    """A layer subclass with a constructor argument."""

    def __init__(self, factor, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, inputs):
        return inputs * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


class CustomObjectsModelBuilder(ModelBuilder):
    """Test only: logits, a function loss, function and class metrics, a custom layer and Lambdas."""

    def get_compiled_model(self):
        inputs = tfk.Input(shape=(self.input_h * self.input_w,), name="image")
        hidden = tfk.layers.Lambda(lambda t: t * 2.0 - 1.0)(inputs)
        hidden = Scale(0.5)(tfk.layers.Dense(self.n_filters, activation="relu")(hidden))
        logits = tfk.layers.Lambda(top_logit_free_scale)(tfk.layers.Dense(10)(hidden))
        model = tfk.Model(inputs, logits)
        model.compile(optimizer="adam", loss=smoothed_ce, metrics=[top_logit, HitRate()])
        return model


def top_logit_free_scale(t):
    return t * 1.0
'''


@pytest.mark.slow
def test_custom_objects_export_evaluate_and_serve_without_registration(train_project, tmp_path):
    import numpy as np

    project = train_project({"model_builder_class": "models.CustomObjectsModelBuilder", "epochs": 2})
    with (project / "src" / "models.py").open("a") as f:
        f.write(CUSTOM_BUILDER)
    for stage in (["train", RUN], ["export", RUN], ["evaluate", RUN, "--split", "test"]):
        check_aimed(project, *stage)
    export = project / "results" / RUN / "export"
    card = json.loads((export / "model_card.json").read_text())
    names = ["HitRate", "Scale", "smoothed_ce", "top_logit", "top_logit_free_scale"]
    assert card["reload"] == {"custom_objects": {name: "models" for name in names}, "safe_mode": False}
    # Logits out: the confidence is the top softmax probability of y_pred (the logits), and the summary says so.
    report = pd.read_csv(project / "results" / RUN / "evaluate" / "test" / "report.csv")
    logits = np.array([json.loads(v) for v in report["y_pred"]])
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(report["confidence"], probabilities.max(axis=1), rtol=1e-5)
    assert (report["pred_class"] == logits.argmax(axis=1)).all()
    summary = json.loads((project / "results" / RUN / "evaluate" / "test" / "summary.json").read_text())
    assert "logits" in summary["confidence"]

    # The SavedModel serves in a process that has neither the user's code nor aimed on its path,
    # and agrees with the .keras file reloaded the way the model card says.
    x = np.random.default_rng(0).random((4, 784), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    serve = subprocess.run(
        [sys.executable, "-c", "import sys, numpy as np, tensorflow as tf\n"
         "sys.path = [p for p in sys.path if 'src' not in p]\n"
         f"m = tf.saved_model.load({str(export / 'savedmodel')!r})\n"
         "f = m.signatures['serving_default']\n"
         f"out = f(**{{list(f.structured_input_signature[1])[0]: tf.constant(np.load({str(tmp_path / 'x.npy')!r}))}})\n"
         f"np.save({str(tmp_path / 'served.npy')!r}, list(out.values())[0].numpy())\n"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert serve.returncode == 0, serve.stderr[-3000:]
    reload = subprocess.run(
        [sys.executable, "-c", "import importlib, sys, numpy as np, keras\n"
         f"objects = {{name: getattr(importlib.import_module(module), name)\n"
         f"           for name, module in {card['reload']['custom_objects']!r}.items()}}\n"
         f"m = keras.models.load_model({str(export / 'model.keras')!r}, custom_objects=objects, safe_mode=False)\n"
         f"np.save({str(tmp_path / 'reloaded.npy')!r}, m.predict(np.load({str(tmp_path / 'x.npy')!r}), verbose=0))\n"],
        cwd=project / "src", capture_output=True, text=True, timeout=120)
    assert reload.returncode == 0, reload.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / "served.npy"), np.load(tmp_path / "reloaded.npy"), rtol=1e-5, atol=1e-6)
