"""The evaluate stage for error analysis: one streaming pass, eval functions batched or per sample,
the per-datapoint report (CSV or Parquet, with metadata), summaries, slices, the quality gate,
plots, MLflow, and non-classification outputs.

One shrunken copy of the project is trained and exported once for the module (one subprocess);
everything else runs in this process, mostly through ``evaluate_split`` and ``aimed.cli.main``.
Batches are 12 for splits of 32 (2 * 12 + 8), so the tf.data example yields a short last batch
and the generator example a full-size one that wraps around or is padded. Evaluation batches of
10 regroup them across their boundaries (10 + 10 + 10 + 2); the default evaluation batch holds
a whole split.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import math
import pathlib
import shutil
import subprocess
import sys
import threading
from typing import Any, Callable, Dict, List

import keras  # noqa: E402  (after aimed: TensorFlow's start-up once, for the whole module)
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import SHRUNK, copy_project, shrink_project, update_yaml

from aimed import EvaluatorBase
from aimed.cli import main as aimed_main
from aimed.data import eval_split, take
from aimed.errors import ComponentError, StageFailed
from aimed.evaluation.funcs import EvalFunction, batched, eval_functions
from aimed.evaluation.plots import write_plots
from aimed.evaluation.split import EVAL_BATCH_SIZE, EvalSettings, evaluate_split
from aimed.evaluation.summary import safe_name
from aimed.run import resolve_run

RUNS = ("mnist-tf", "mnist-gen")
BATCH_SIZE = 12
EVAL_BATCH_SIZES = (10, EVAL_BATCH_SIZE)
EVAL_FUNC = "sparse categorical ce"  # the example Evaluator's one eval function
STATS = ("mean", "std", "min", "p5", "p50", "p95", "max")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

#: Test-only DataLoaders with metadata, added to the project copy's src/ (importing the example).
META_LOADER = '''
import pandas as pd

from dataset import DataLoaderTF


class DataLoaderMeta(DataLoaderTF):
    """The tf.data example plus per-image metadata: a 'writer' derived from the label."""

    def get_metadata(self, split):
        labels = pd.read_csv(self.data_dir / split / "labels.csv")
        return pd.DataFrame({"writer": [f"w{label % 3}" for label in labels["label"]]},
                            index=labels["image name"])


class DataLoaderMetaByPosition(DataLoaderMeta):
    """No validation index, so validation ids are positions; metadata keyed by integer position."""

    def get_validation_index(self):
        return None

    def get_metadata(self, split):
        return super().get_metadata(split).reset_index(drop=True)
'''

#: Test-only components of a regression, a segmentation and a one-hot classification task.
SYNTH = '''
import itertools
import math

import keras
import numpy as np

from aimed import DataLoaderBase, EvaluatorBase, ModelBuilderBase, PreprocessorBase
from aimed.evaluation.funcs import batched

N, SIZE, BATCH = 10, 8, 4


def targets(task, x):
    if task == "regression":
        return np.array([x.mean(), x.std(), x.max(), x.min()], dtype=np.float32)
    if task == "segmentation":
        return (x > 0.5).astype(np.float32)
    return np.eye(3, dtype=np.float32)[int(x.sum()) % 3]


class SynthLoader(DataLoaderBase):
    def _set_defaults(self):
        self.task = "regression"

    def _load_params(self, config):
        self.task = config.data_loader.task

    def points(self, seed):
        x = np.random.default_rng(seed).random((N, SIZE, SIZE, 1), dtype=np.float32)
        return x, [targets(self.task, xi) for xi in x]

    def create_training_generator(self):
        x, y = self.points(0)
        return ((xi, yi, 1.0) for xi, yi in zip(x, y)), N

    def create_validation_generator(self):
        x, y = self.points(1)
        return ((xi, yi, 1.0) for xi, yi in zip(x, y)), N

    def create_test_generator(self):
        x, y = self.points(2)
        return ((xi, yi, f"s{i:02d}") for i, (xi, yi) in enumerate(zip(x, y))), N


class SynthPreprocessor(PreprocessorBase):
    def image_preprocess(self, image):
        return image

    def label_preprocess(self, label):
        return label

    def add_image_preprocess(self, generator):
        return ((self.image_preprocess(x), y, w) for x, y, w in generator)

    def add_label_preprocess(self, generator):
        return ((x, self.label_preprocess(y), w) for x, y, w in generator)

    def batchify(self, generator, n):
        def batches():
            while True:
                chunk = list(itertools.islice(generator, BATCH))
                if not chunk:
                    return
                yield tuple(np.stack(part) for part in zip(*chunk))

        return batches(), math.ceil(n / BATCH)


class SynthModel(ModelBuilderBase):
    def _set_defaults(self):
        self.task = "regression"

    def _load_params(self, config):
        self.task = config.data_loader.task

    def get_compiled_model(self):
        inputs = keras.Input((SIZE, SIZE, 1), name="image")
        if self.task == "segmentation":
            outputs = keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(inputs)
            loss, metrics = "mse", ["mae"]
        elif self.task == "regression":
            outputs = keras.layers.Dense(4)(keras.layers.Flatten()(inputs))
            loss, metrics = "mse", ["mae"]
        else:
            outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inputs))
            loss, metrics = "categorical_crossentropy", ["categorical_accuracy"]
        model = keras.Model(inputs, outputs)
        model.compile(optimizer="adam", loss=loss, metrics=metrics)
        return model


@batched
def dice(y_true, y_pred):
    axes = tuple(range(1, np.ndim(y_true)))
    return 2 * np.sum(y_true * y_pred, axis=axes) / (np.sum(y_true, axis=axes) + np.sum(y_pred, axis=axes))


class SynthEvaluator(EvaluatorBase):
    def _set_defaults(self):
        self.task = "regression"

    def _load_params(self, config):
        self.task = config.data_loader.task

    def get_eval_funcs(self):
        if self.task == "regression":
            return {"mse": lambda t, p: np.mean((t - p) ** 2, axis=-1),
                    "max abs err": lambda t, p: np.max(np.abs(t - p))}
        if self.task == "segmentation":
            return {"mse": lambda t, p: np.mean((t - p) ** 2, axis=(-3, -2, -1)), "dice": dice}
        return {"ce": lambda t, p: keras.losses.categorical_crossentropy(t, p).numpy()}
'''

#: Runs the module's project trains and exports once, in one process (one TensorFlow start-up).
TRAIN_SCRIPT = """
import sys
from aimed.cli import main
for stage in ("validate-data", "train", "export"):
    code = main([stage, "mnist-tf"])
    if code:
        sys.exit(code)
"""


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> pathlib.Path:
    """A shrunken project copy with mnist-tf trained (1 epoch) and exported; MLflow in its own SQLite file."""
    root = tmp_path_factory.mktemp("evaluate")
    project = copy_project(root / "project")
    shrink_project(project, project / "mlflow.db")  # the path the default store resolves to
    for run in RUNS:
        update_yaml(project / "runs" / run / "config.yaml",
                    {"epochs": 1, "batch_size": BATCH_SIZE, "model_builder": {"n_filters": 16}})
    subprocess.run(
        [sys.executable, "workflow/scripts/prepare_mnist.py", "--sample", "data/mnist_sample.npz",
         "--out", "datasets/mnist", *[f"--limit-{s}={SHRUNK[s]}" for s in ("train", "validation", "test")]],
        cwd=project, check=True, capture_output=True,
    )
    proc = subprocess.run([sys.executable, "-c", TRAIN_SCRIPT], cwd=project, capture_output=True, text=True,
                          timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"training the evaluation project failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-10000:]}")
    (project / "src" / "meta_loader.py").write_text(META_LOADER)
    (project / "src" / "synth.py").write_text(SYNTH)
    return project


@pytest.fixture(scope="module")
def contexts(project) -> Dict[str, Any]:
    return {run: resolve_run(run, project) for run in RUNS}


@pytest.fixture(scope="module")
def model(project, contexts):
    """The exported model of mnist-tf (the same architecture serves both example runs)."""
    contexts["mnist-tf"].model_builder()
    return keras.models.load_model(project / "results" / "mnist-tf" / "export" / "model.keras", compile=True)


def add_run(project: pathlib.Path, name: str, overrides: Dict[str, Any], results_from: str = None):
    """A run config ``runs/<name>/config.yaml``: mnist-tf's with ``overrides``; optionally its results copied."""
    folder = project / "runs" / name
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(project / "runs" / "mnist-tf" / "config.yaml", folder / "config.yaml")
    update_yaml(folder / "config.yaml", overrides)
    if results_from:
        for stage in ("validate_data", "train", "export"):
            shutil.copytree(project / "results" / results_from / stage, project / "results" / name / stage,
                            dirs_exist_ok=True)
    return resolve_run(name, project)


class FuncsEvaluator(EvaluatorBase):
    """An Evaluator with the given eval functions."""

    def __init__(self, funcs: Dict[str, Callable]) -> None:
        super().__init__(None)
        self.funcs = funcs

    def get_eval_funcs(self) -> Dict[str, Callable]:
        return list(self.funcs) if isinstance(self.funcs, list) else dict(self.funcs)


def batch_capable_ce(y_true, y_pred):
    """One value per sample for a batch, one value for one sample: batchable without saying so."""
    return keras.losses.sparse_categorical_crossentropy(y_true, y_pred).numpy()


def tutorial_ce(y_true, y_pred):
    """The tutorial's style: a Keras Loss object, which reduces a batch to one number."""
    return keras.losses.SparseCategoricalCrossentropy()(y_true, y_pred).numpy()


def recording_correct(calls: List[int]) -> Callable:
    """A ``@batched`` eval function that records the rank of every ``y_pred`` it is called with."""

    @batched
    def correct(y_true, y_pred):
        calls.append(np.ndim(y_pred))
        return (np.argmax(y_pred, axis=-1) == y_true).astype(np.float64)

    return correct


def single_only(func: Callable) -> Callable:
    """``func`` refusing batches (and dropping any ``@batched`` mark): forces the per-sample path."""

    def one_at_a_time(y_true, y_pred):
        if np.ndim(y_pred) > 1:
            raise ValueError("one data point at a time")
        return func(y_true, y_pred)

    return one_at_a_time


def read_rows(path: pathlib.Path) -> List[Dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def leaves(obj: Any, path: str = ""):
    """(dotted path, value) of every leaf of a JSON value."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from leaves(value, f"{path}.{key}" if path else str(key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from leaves(value, f"{path}[{i}]")
    else:
        yield path, obj


# ----------------------------------------------------------------------------- eval functions


def test_eval_function_decides_on_the_first_batch_of_two_or_more():
    rng = np.random.default_rng(0)
    y_pred = rng.random((6, 10)).astype(np.float32)
    y_pred /= y_pred.sum(axis=1, keepdims=True)
    y_true = rng.integers(0, 10, 6)
    expected = -np.log(y_pred[np.arange(6), y_true])

    # A Loss object returns one number for a batch of one as well: that batch must not decide.
    loss = EvalFunction("tutorial", tutorial_ce)
    np.testing.assert_allclose(loss(y_true[:1], y_pred[:1]), expected[:1], rtol=1e-5)
    assert loss.mode is None
    np.testing.assert_allclose(loss(y_true[1:], y_pred[1:]), expected[1:], rtol=1e-5)
    assert loss.mode == "per_sample"
    np.testing.assert_allclose(loss(y_true, y_pred), expected, rtol=1e-5)

    capable = EvalFunction("capable", batch_capable_ce)
    capable(y_true[:3], y_pred[:3])
    assert capable.mode == "batched"
    np.testing.assert_allclose(capable(y_true, y_pred), expected, rtol=1e-5)

    # A batch form that gives other values (here: relative to the batch's mean) is not used.
    def relative(t, p):
        top = np.max(p, axis=-1)
        return top / np.mean(top)

    differs = EvalFunction("relative", relative)
    np.testing.assert_array_equal(differs(y_true, y_pred), np.ones(6))
    assert differs.mode == "per_sample"
    np.testing.assert_array_equal(differs(y_true, y_pred), np.ones(6))

    @batched
    def reduces(t, p):
        return np.mean(p)

    wrong = EvalFunction("reduces", reduces)
    assert wrong.mode == "batched"
    with pytest.raises(ValueError, match="'reduces' is marked batched but did not return one value per sample"):
        wrong(y_true, y_pred)

    with pytest.raises(ComponentError, match=r"get_eval_funcs\(\) must return"):
        eval_functions(FuncsEvaluator({"not callable": 1.0}))


def test_get_eval_funcs_may_return_a_list_of_functions_or_of_eval_func_objects():
    def dice(t, p):
        return 1.0

    class EvalFunc:  # the v0.2 shape: name, description, get_func()
        name, description = "Intersection over union", "IoU of the thresholded masks"

        def get_func(self):
            def iou(t, p):
                return 0.5
            return iou

    funcs = eval_functions(FuncsEvaluator([dice, EvalFunc(), lambda t, p: 0.0]))
    assert list(funcs) == ["dice", "iou", "<lambda>"]
    with pytest.raises(ComponentError, match="several functions are named dice"):
        eval_functions(FuncsEvaluator([dice, dice]))


def test_the_check_spans_the_batch_and_a_refused_batch_keeps_row_order():
    """A batch form that is wrong only past the first rows is caught: the checked samples run from
    the first to the last. The per-sample values then come back in row order."""
    n = 1000
    y_true, y_pred = np.arange(n, dtype=np.float64), np.zeros((n, 2), dtype=np.float32)

    def wrong_late(t, p):  # per sample: t; on a batch: right for its first 100 rows only
        values = np.array(t, dtype=np.float64)
        if values.ndim:
            values[100:] = -1.0
        return values

    func = EvalFunction("late", wrong_late)
    np.testing.assert_array_equal(func(y_true, y_pred), y_true)
    assert func.mode == "per_sample"
    np.testing.assert_array_equal(func(y_true[:7], y_pred[:7]), y_true[:7])


def test_report_csv_lines_are_those_of_the_csv_module():
    from aimed.evaluation.report import csv_lines

    columns = [["a", "b,c", 'say "hi"', "two\nlines", "", " lead"],
               ["[0.1, 0.2]", "[1]", "", "x", "z", "w"],
               ["1", "2", "3", "4", "6", "7"]]
    expected = io.StringIO()
    csv.writer(expected, lineterminator="\n").writerows(zip(*columns))
    assert csv_lines(columns) == expected.getvalue()
    # A carriage return is quoted too (csv.writer leaves it bare when lines end in "\n"), so it reads back.
    columns[0].append("cr\r")
    columns[1].append("y")
    columns[2].append("5")
    assert list(csv.reader(io.StringIO(csv_lines(columns), newline=""))) == [list(row) for row in zip(*columns)]


def test_a_function_left_per_sample_is_logged_with_its_cost_and_the_way_out(caplog):
    y_pred = np.full((4, 3), 1 / 3, dtype=np.float32)
    y_true = np.zeros(4, dtype=np.int64)
    cases = {
        "mean": (lambda t, p: float(np.mean(p)), "did not return one value per sample"),
        "single only": (lambda t, p: float(p[int(t)]), "raised TypeError"),
        "relative": (lambda t, p: np.max(p, axis=-1) / np.sum(p), "gave values other than its per-sample results"),
    }
    with caplog.at_level(logging.INFO, logger="aimed.evaluation.funcs"):
        for name, (func, why) in cases.items():
            caplog.clear()
            EvalFunction(name, func)(y_true, y_pred)
            (record,) = [r for r in caplog.records if "runs per sample" in r.getMessage()]
            # The documented contract (one data point only) is a speed hint; a batch-reducing function a warning.
            assert record.levelno == (logging.INFO if name == "single only" else logging.WARNING), name
            message = record.getMessage()
            assert f"eval function '{name}' runs per sample" in message and "ms a call" in message
            assert f"called on a batch of 4 it {why}" in message, message
            assert "@aimed.metrics.batched" in message
        caplog.clear()
        EvalFunction("capable", batch_capable_ce)(y_true, y_pred)
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("eval_batch_size", EVAL_BATCH_SIZES)
@pytest.mark.parametrize("run", RUNS)
def test_batched_and_per_sample_reports_are_identical(run, eval_batch_size, contexts, model, tmp_path):
    """The batch path is an optimisation only: forcing every function per sample gives the same bytes."""
    ctx = contexts[run]
    settings = EvalSettings(batch_size=eval_batch_size)
    for split in ("validation", "test"):
        calls: List[int] = []
        funcs = {"ce": batch_capable_ce, "tutorial ce": tutorial_ce, "correct": recording_correct(calls)}
        fast = evaluate_split(model, ctx.data_loader(), ctx.preprocessor(), FuncsEvaluator(funcs), split,
                              tmp_path / f"{split}-batched.csv", settings)
        assert fast.summary["eval_function_modes"] == {"ce": "batched", "tutorial ce": "per_sample",
                                                       "correct": "batched"}
        # @batched: one call per evaluation batch, never per sample
        assert calls == [2] * math.ceil(SHRUNK[split] / eval_batch_size)

        slow = evaluate_split(model, ctx.data_loader(), ctx.preprocessor(),
                              FuncsEvaluator({k: single_only(f) for k, f in funcs.items()}), split,
                              tmp_path / f"{split}-per-sample.csv", settings)
        assert set(slow.summary["eval_function_modes"].values()) == {"per_sample"}

        batched_bytes = (tmp_path / f"{split}-batched.csv").read_bytes()
        assert batched_bytes == (tmp_path / f"{split}-per-sample.csv").read_bytes()
        assert fast.summary["metrics"] == slow.summary["metrics"]
        assert fast.summary["model_metrics"] == slow.summary["model_metrics"]

        # The fallback is correct too: the Loss-object function gives the batch function's values.
        rows = read_rows(tmp_path / f"{split}-batched.csv")
        assert len(rows) == SHRUNK[split]
        np.testing.assert_allclose([float(r["tutorial ce"]) for r in rows], [float(r["ce"]) for r in rows],
                                   rtol=1e-5)
        assert [float(r["correct"]) for r in rows] == [float(r["pred_class"] == r["y_true"]) for r in rows]


# ----------------------------------------------------------------------------- one pass, model metrics


@pytest.mark.parametrize("split", ["validation", "test"])
def test_model_metrics_match_model_evaluate(split, contexts, model, tmp_path):
    """The loss and compiled metrics, computed from the report's own predictions, equal model.evaluate."""
    ctx = contexts["mnist-tf"]  # tf.data: n_iter batches are exactly the split (short last batch)
    result = evaluate_split(model, ctx.data_loader(), ctx.preprocessor(), ctx.evaluator(), split,
                            tmp_path / "report.csv")
    prepared = eval_split(ctx.data_loader(), ctx.preprocessor(), split)
    batches, n_iter = prepared.batches, prepared.n_iter
    if split == "test":
        batches = batches.map(lambda x, y, unit_weight: (x, y))  # the test split is unweighted
    expected = model.evaluate(batches.take(n_iter), return_dict=True, verbose=0)
    got = result.summary["model_metrics"]
    assert set(expected) <= set(got)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-5, abs=1e-7), name
    assert result.summary["eval_function_modes"] == {EVAL_FUNC: "per_sample"}  # the tutorial's Loss object


def test_progress_lines_without_a_tty(contexts, model, tmp_path, caplog):
    ctx = contexts["mnist-gen"]
    with caplog.at_level(logging.INFO, logger="aimed.stages.evaluate"):
        evaluate_split(model, ctx.data_loader(), ctx.preprocessor(), ctx.evaluator(), "test", tmp_path / "r.csv")
    lines = [r.getMessage() for r in caplog.records if "samples/s" in r.getMessage()]
    assert lines and lines[-1].startswith(f"test: {SHRUNK['test']}/{SHRUNK['test']} samples"), lines


def test_progress_bar_on_a_tty(contexts, model, tmp_path, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    ctx = contexts["mnist-tf"]
    evaluate_split(model, ctx.data_loader(), ctx.preprocessor(), ctx.evaluator(), "test", tmp_path / "r.csv",
                   EvalSettings(batch_size=EVAL_BATCH_SIZES[0]))
    updates = terminal.getvalue().split("\r")[1:]
    assert len(updates) == math.ceil(SHRUNK["test"] / EVAL_BATCH_SIZES[0])  # one per evaluation batch
    assert all("samples/s" in u for u in updates)
    assert updates[-1].startswith(f"test: [{'=' * 30}] {SHRUNK['test']}/{SHRUNK['test']} ") and updates[-1].endswith("\n")


# ----------------------------------------------------------------------------- metadata, parquet, slices


@pytest.mark.parametrize("split", ["validation", "test"])
def test_metadata_columns_parquet_and_slices(split, project, model, tmp_path):
    ctx = add_run(project, "mnist-meta", {
        "data_loader_class": "meta_loader.DataLoaderMeta", "mlflow": {"enabled": False},
        "evaluation": {"report_format": "parquet", "slice_by": ["y_true", "writer"]},
    }, results_from="mnist-tf")
    assert aimed_main(["evaluate", "mnist-meta", "--split", split, "--project-dir", str(project)]) == 0
    out = project / "results" / "mnist-meta" / "evaluate" / split
    assert not (out / "report.csv").exists()
    table = pd.read_parquet(out / "report.parquet")

    # The same evaluation as CSV has the same rows, cell for cell.
    settings = EvalSettings("csv", ("y_true", "writer"))
    evaluate_split(model, ctx.data_loader(), ctx.preprocessor(), ctx.evaluator(), split, tmp_path / "r.csv", settings)
    as_csv = pd.read_csv(tmp_path / "r.csv", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(table, as_csv)

    labels = pd.read_csv(project / "datasets" / "mnist" / split / "labels.csv")
    n = len(labels)
    assert list(table.columns) == ["data_id", "row", "y_true", "y_pred", "pred_class", "confidence", EVAL_FUNC,
                                   "writer"]
    assert list(table["data_id"]) == list(labels["image name"])
    assert list(table["writer"]) == [f"w{label % 3}" for label in labels["label"]]

    summary = json.loads((out / "summary.json").read_text())
    slices = summary["slices"]
    assert set(slices) == {"y_true", "writer"}
    for column, groups in slices.items():
        assert sum(g["n"] for g in groups.values()) == n
        for key, group in groups.items():
            rows = table[table[column] == key]
            assert group["n"] == len(rows)
            assert group["accuracy"] == pytest.approx(float(np.mean(rows["pred_class"] == rows["y_true"])))
            assert group[f"{EVAL_FUNC}_mean"] == pytest.approx(rows[EVAL_FUNC].astype(float).mean(), rel=1e-9)
    assert {k: g["n"] for k, g in slices["y_true"].items()} == {
        str(k): int(v) for k, v in labels["label"].value_counts().items()}


def test_metadata_with_an_integer_index(project, model, tmp_path):
    """Validation ids without get_validation_index are positions; metadata keyed by int positions matches them."""
    ctx = add_run(project, "mnist-meta-pos", {"data_loader_class": "meta_loader.DataLoaderMetaByPosition"})
    evaluate_split(model, ctx.data_loader(), ctx.preprocessor(), ctx.evaluator(), "validation", tmp_path / "r.csv",
                   EvalSettings(slice_by=("writer",)))
    rows = read_rows(tmp_path / "r.csv")
    labels = pd.read_csv(project / "datasets" / "mnist" / "validation" / "labels.csv")
    assert [r["data_id"] for r in rows] == [str(i) for i in range(len(labels))]
    assert [r["writer"] for r in rows] == [f"w{label % 3}" for label in labels["label"]]


def test_slicing_by_an_unknown_column_fails(contexts, model, tmp_path):
    ctx = contexts["mnist-tf"]
    with pytest.raises(Exception, match="evaluation.slice_by names 'writer', which is not a report column"):
        evaluate_split(model, ctx.data_loader(), ctx.preprocessor(), ctx.evaluator(), "test", tmp_path / "r.csv",
                       EvalSettings(slice_by=("writer",)))


class BreaksAfterOneBatch:
    """A preprocessor whose batches raise after the first one, as a broken input pipeline does."""

    def __init__(self, preprocessor: Any) -> None:
        self.preprocessor = preprocessor

    def add_preprocess(self, source: Any, n: int):
        batches, n_iter = self.preprocessor.add_preprocess(source, n)

        def broken():
            yield from take(batches, 1)
            raise RuntimeError("the input broke")

        return broken(), n_iter


@pytest.mark.parametrize("run", RUNS)
def test_the_worker_thread_ends_with_the_pass_and_hands_on_errors(run, contexts, model, tmp_path):
    """Batches are read and predicted one ahead in a worker thread: it ends with the pass, done or
    failed, and an error of the input reaches the caller as it was raised."""
    ctx = contexts[run]

    def workers():
        return [t.name for t in threading.enumerate() if t.name.startswith("aimed-evaluate")]

    settings = EvalSettings(batch_size=EVAL_BATCH_SIZES[0])
    evaluate_split(model, ctx.data_loader(), ctx.preprocessor(), ctx.evaluator(), "test", tmp_path / "r.csv", settings)
    assert not workers()
    with pytest.raises(StageFailed, match="evaluation.slice_by names 'writer'"):
        evaluate_split(model, ctx.data_loader(), ctx.preprocessor(), ctx.evaluator(), "test", tmp_path / "r.csv",
                       dataclasses.replace(settings, slice_by=("writer",)))
    assert not workers()
    with pytest.raises(RuntimeError, match="the input broke"):
        evaluate_split(model, ctx.data_loader(), BreaksAfterOneBatch(ctx.preprocessor()), ctx.evaluator(), "test",
                       tmp_path / "r.csv", settings)
    assert not workers()


# ----------------------------------------------------------------------------- the stage


def test_stage_outputs_summary_and_plots(project, capsys):
    assert aimed_main(["evaluate", "mnist-tf", "--split", "test", "--project-dir", str(project)]) == 0
    out = project / "results" / "mnist-tf" / "evaluate" / "test"
    rows = read_rows(out / "report.csv")
    n = SHRUNK["test"]
    assert len(rows) == n
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n"] == n and "gate" not in summary  # the gate is the validation split's

    values = np.array([float(r[EVAL_FUNC]) for r in rows])
    stats = summary["metrics"][EVAL_FUNC]
    expected = dict(mean=values.mean(), std=values.std(), min=values.min(), max=values.max(),
                    **{f"p{p}": np.percentile(values, p) for p in (5, 50, 95)})
    assert set(STATS) <= set(stats) and stats["n_nan"] == 0
    for key in STATS:
        assert stats[key] == pytest.approx(expected[key], rel=1e-9), key
    assert summary["model_metrics"]["loss"] == pytest.approx(values.mean(), rel=1e-4)

    # Confusion matrix, per-class P/R/F1 and accuracy, all from the report's rows.
    confusion = np.array(json.loads((out / "confusion_matrix.json").read_text())["confusion_matrix"])
    expected_confusion = np.zeros((10, 10), dtype=int)
    for r in rows:
        expected_confusion[int(r["y_true"]), int(r["pred_class"])] += 1
    np.testing.assert_array_equal(confusion, expected_confusion)
    classification = summary["classification"]
    assert classification["accuracy"] == pytest.approx(np.trace(confusion) / n)
    assert summary["model_metrics"]["sparse_categorical_accuracy"] == pytest.approx(classification["accuracy"])
    for c, scores in classification["per_class"].items():
        c = int(c)
        tp, predicted, actual = confusion[c, c], confusion[:, c].sum(), confusion[c].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        assert (scores["precision"], scores["recall"], scores["f1"], scores["support"]) == pytest.approx(
            (precision, recall, f1, actual))

    # Readable as DVC metrics: plain JSON whose metric sections end in numbers (null: undefined).
    for section in ("n", "metrics", "model_metrics", "classification"):
        for path, leaf in leaves(summary[section], section):
            assert leaf is None or (isinstance(leaf, (int, float)) and not isinstance(leaf, bool)), path
    card = json.loads((out / "model_card.json").read_text())
    assert card["evaluation"]["accuracy"] == classification["accuracy"]
    assert card["evaluation"]["model_metrics"] == summary["model_metrics"]

    # Plots: training curves, confusion matrix, one histogram per eval function, worst-k grid.
    pngs = [project / "results" / "mnist-tf" / "train" / "curves.png", out / "plots" / "confusion_matrix.png",
            out / "plots" / "hist_sparse_categorical_ce.png", out / "plots" / "worst.png"]
    for png in pngs:
        assert png.read_bytes()[:8] == PNG_MAGIC, png
        assert png.stat().st_size > 5000, png


def test_summary_is_read_by_dvc(project, tmp_path):
    """``dvc metrics show`` reads the summary and lists its numbers."""
    dvc = shutil.which("dvc")
    if dvc is None:
        pytest.skip("dvc is not installed in this environment")
    summary = project / "results" / "mnist-tf" / "evaluate" / "test" / "summary.json"
    if not summary.is_file():
        assert aimed_main(["evaluate", "mnist-tf", "--split", "test", "--project-dir", str(project)]) == 0
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(summary, repo / "summary.json")
    subprocess.run([dvc, "init", "--no-scm", "-q"], cwd=repo, check=True)
    proc = subprocess.run([dvc, "metrics", "show", "--json", "summary.json"], cwd=repo, capture_output=True,
                          text=True, check=True)
    shown = json.loads(proc.stdout)
    data = next(iter(shown.values()))["data"]["summary.json"]["data"]
    assert data["model_metrics"]["loss"] == pytest.approx(json.loads(summary.read_text())["model_metrics"]["loss"])
    assert data["metrics"][EVAL_FUNC]["p95"] is not None


@pytest.fixture
def thresholds(project):
    """Set evaluation.thresholds of mnist-tf: ``thresholds({...})``; the config is restored afterwards."""
    path = project / "runs" / "mnist-tf" / "config.yaml"
    original = path.read_text()

    def set_thresholds(value: Dict[str, Any]) -> None:
        config = yaml.safe_load(original)
        config.setdefault("evaluation", {})["thresholds"] = value  # replaced, not merged
        path.write_text(yaml.safe_dump(config, sort_keys=False))

    yield set_thresholds
    path.write_text(original)


def test_failed_quality_gate(project, thresholds, capsys, monkeypatch):
    thresholds({"accuracy": {"min": 0.999}, EVAL_FUNC: {"max": 1e-4}, "loss": {"max": 1000}})
    export_card = (project / "results" / "mnist-tf" / "export" / "model_card.json").read_text()
    out = project / "results" / "mnist-tf" / "evaluate" / "validation"
    monkeypatch.delenv("AIMED_NO_GATE", raising=False)

    code = aimed_main(["evaluate", "mnist-tf", "--split", "validation", "--project-dir", str(project)])
    stderr = capsys.readouterr().err
    assert code == 1
    summary = json.loads((out / "summary.json").read_text())
    accuracy = summary["classification"]["accuracy"]
    mean_ce = summary["metrics"][EVAL_FUNC]["mean"]
    assert "failed its quality gate on the validation split" in stderr
    assert f"accuracy = {accuracy:.6g}, required >= 0.999" in stderr
    assert f"{EVAL_FUNC} = {mean_ce:.6g}, required <= 0.0001" in stderr
    assert "loss =" not in stderr  # a passed threshold is not a failure

    # The outputs are written all the same, marked not blessed, and the evaluated card says so.
    assert summary["blessed"] is False and len(summary["gate"]["failures"]) == 2
    assert {c["metric"]: c["passed"] for c in summary["gate"]["checks"]} == {
        "accuracy": False, EVAL_FUNC: False, "loss": True}
    assert len(read_rows(out / "report.csv")) == SHRUNK["validation"]
    assert not (out / "fingerprint.json").exists()  # no completed stage: Snakemake reruns it
    card = json.loads((out / "model_card.json").read_text())
    assert card["evaluation"]["blessed"] is False and card["evaluation"]["gate"] == summary["gate"]
    assert card["best_epoch"] == json.loads(export_card)["best_epoch"]
    assert (project / "results" / "mnist-tf" / "export" / "model_card.json").read_text() == export_card

    # --no-gate and AIMED_NO_GATE=1 report the same failure without failing.
    assert aimed_main(["evaluate", "mnist-tf", "--split", "validation", "--no-gate", "--project-dir", str(project)]) == 0
    monkeypatch.setenv("AIMED_NO_GATE", "1")
    assert aimed_main(["evaluate", "mnist-tf", "--split", "validation", "--project-dir", str(project)]) == 0
    assert json.loads((out / "summary.json").read_text())["blessed"] is False
    assert (out / "fingerprint.json").is_file()

    # A gate the model meets blesses it.
    monkeypatch.delenv("AIMED_NO_GATE")
    thresholds({"accuracy": {"min": 0.0}, "loss": {"max": 1000}})
    assert aimed_main(["evaluate", "mnist-tf", "--split", "validation", "--project-dir", str(project)]) == 0
    assert json.loads((out / "model_card.json").read_text())["evaluation"]["blessed"] is True


def test_mlflow_gets_metrics_and_artifacts_and_reruns_add_no_runs(project):
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    ctx = resolve_run("mnist-tf", project)
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(ctx.config.project_name)
    run_id = json.loads((project / "results" / "mnist-tf" / "train" / "summary.json").read_text())["mlflow_run_id"]
    assert run_id

    def runs():
        return sorted(r.info.run_id for r in client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL))

    before = runs()
    for _ in range(2):
        assert aimed_main(["evaluate", "mnist-tf", "--split", "validation", "--project-dir", str(project)]) == 0
    assert runs() == before == [run_id]

    summary = json.loads((project / "results" / "mnist-tf" / "evaluate" / "validation" / "summary.json").read_text())
    metrics = client.get_run(run_id).data.metrics
    assert metrics["validation_loss"] == pytest.approx(summary["model_metrics"]["loss"])
    assert metrics["validation_accuracy"] == pytest.approx(summary["classification"]["accuracy"])
    for stat in STATS:
        assert metrics[f"validation_sparse_categorical_ce_{stat}"] == pytest.approx(summary["metrics"][EVAL_FUNC][stat])

    def artifacts(path):
        found = []
        for info in client.list_artifacts(run_id, path):
            found += artifacts(info.path) if info.is_dir else [info.path]
        return found

    logged = artifacts("evaluation/validation")
    assert len(logged) == len(set(logged))  # overwritten, not duplicated
    for name in ("report.csv", "summary.json", "model_card.json", "confusion_matrix.json", "plots/confusion_matrix.png",
                 "plots/worst.png", "plots/hist_sparse_categorical_ce.png"):
        assert f"evaluation/validation/{name}" in logged


# ----------------------------------------------------------------------------- other tasks


def _synth(project: pathlib.Path, task: str):
    name = f"synth-{task}"
    ctx = add_run(project, name, {
        "data_loader_class": "synth.SynthLoader", "preprocessor_class": "synth.SynthPreprocessor",
        "model_builder_class": "synth.SynthModel", "evaluator_class": "synth.SynthEvaluator",
        "data_loader": {"task": task}, "input_height": 8, "input_width": 8,
    })
    keras.utils.set_random_seed(0)
    return ctx, ctx.model_builder().get_compiled_model()


def _json_cell(values) -> str:
    return json.dumps([float(f"{v:.8g}") for v in np.asarray(values).reshape(-1).tolist()])


@pytest.mark.parametrize("task", ["regression", "segmentation", "onehot"])
def test_other_tasks(task, project, tmp_path):
    """Array outputs: y_true/y_pred hold a summary (a short vector as JSON, a big array as its mean)."""
    ctx, synth_model = _synth(project, task)
    loader = ctx.data_loader()
    result = evaluate_split(synth_model, loader, ctx.preprocessor(), ctx.evaluator(), "test", tmp_path / "r.csv")
    rows = read_rows(tmp_path / "r.csv")
    x, y = loader.points(2)  # what the test split holds
    y = np.stack(y)
    p = np.asarray(synth_model.predict_on_batch(x))
    n = len(x)
    assert [r["data_id"] for r in rows] == [f"s{i:02d}" for i in range(n)]
    summary = result.summary

    if task == "regression":
        assert "pred_class" not in rows[0] and "classification" not in summary and result.confusion is None
        assert [r["y_true"] for r in rows] == [_json_cell(v) for v in y]
        for r, own in zip(rows, p):
            np.testing.assert_allclose(json.loads(r["y_pred"]), own, rtol=1e-5, atol=1e-6)
        mse = np.mean((y - p) ** 2, axis=-1)
        np.testing.assert_allclose([float(r["mse"]) for r in rows], mse, rtol=1e-5)
        np.testing.assert_allclose([float(r["max abs err"]) for r in rows], np.max(np.abs(y - p), axis=-1), rtol=1e-5)
        assert summary["eval_function_modes"] == {"mse": "batched", "max abs err": "per_sample"}
        assert summary["model_metrics"]["loss"] == pytest.approx(mse.mean(), rel=1e-5)
        assert summary["model_metrics"]["mae"] == pytest.approx(np.abs(y - p).mean(), rel=1e-5)
    elif task == "segmentation":
        assert "pred_class" not in rows[0] and "classification" not in summary
        np.testing.assert_allclose([float(r["y_true"]) for r in rows], y.mean(axis=(1, 2, 3)), rtol=1e-6)
        np.testing.assert_allclose([float(r["y_pred"]) for r in rows], p.mean(axis=(1, 2, 3)), rtol=1e-5)
        mse = np.mean((y - p) ** 2, axis=(1, 2, 3))
        dice = 2 * np.sum(y * p, axis=(1, 2, 3)) / (np.sum(y, axis=(1, 2, 3)) + np.sum(p, axis=(1, 2, 3)))
        np.testing.assert_allclose([float(r["mse"]) for r in rows], mse, rtol=1e-5)
        np.testing.assert_allclose([float(r["dice"]) for r in rows], dice, rtol=1e-5)
        assert summary["eval_function_modes"] == {"mse": "batched", "dice": "batched"}
        assert summary["model_metrics"]["loss"] == pytest.approx(mse.mean(), rel=1e-5)
    else:  # one-hot classification
        classes = np.argmax(y, axis=1)
        assert [int(r["y_true"]) for r in rows] == classes.tolist()
        assert [int(r["pred_class"]) for r in rows] == np.argmax(p, axis=1).tolist()
        np.testing.assert_allclose([float(r["confidence"]) for r in rows], p.max(axis=1), rtol=1e-5)
        ce = -np.log(p[np.arange(n), classes])
        np.testing.assert_allclose([float(r["ce"]) for r in rows], ce, rtol=1e-4)
        assert result.confusion.sum() == n
        assert summary["classification"]["accuracy"] == pytest.approx(np.mean(classes == np.argmax(p, axis=1)))
        assert summary["model_metrics"]["categorical_accuracy"] == pytest.approx(summary["classification"]["accuracy"])
        assert summary["model_metrics"]["loss"] == pytest.approx(ce.mean(), rel=1e-4)

    # The plots work for every output kind (a note instead of a confusion matrix for non-classifiers).
    out = tmp_path / "out"
    out.mkdir()
    write_plots(out, result, "test", 8, 8)
    assert {p.name for p in (out / "plots").iterdir()} == {
        "confusion_matrix.png", "worst.png", *(f"hist_{safe_name(k)}.png" for k in result.values)}


def test_one_pass_over_the_split(contexts, model, tmp_path):
    """The report, the compiled metrics and the summary come from a single read of the data."""
    ctx = contexts["mnist-gen"]  # a plain, endless generator: a second pass would show as more points read
    loader, preprocessor = ctx.data_loader(), ctx.preprocessor()
    calls = {"create_test_generator": 0, "batchify": 0, "points": 0}
    create, batchify = loader.create_test_generator, preprocessor.batchify

    def counted_create():
        calls["create_test_generator"] += 1
        source, n = create()

        def points():
            for point in source:
                calls["points"] += 1
                yield point

        return points(), n

    def counted_batchify(*args, **kwargs):
        calls["batchify"] += 1
        return batchify(*args, **kwargs)

    loader.create_test_generator, preprocessor.batchify = counted_create, counted_batchify
    result = evaluate_split(model, loader, preprocessor, ctx.evaluator(), "test", tmp_path / "report.csv")
    n, batch_size = SHRUNK["test"], ctx.config.batch_size
    n_iter = -(-n // batch_size)
    assert calls["create_test_generator"] == calls["batchify"] == 1, calls
    # At most the split's n_iter batches, plus what a batch being assembled may have pulled ahead.
    assert n <= calls["points"] <= n_iter * batch_size + batch_size, calls
    assert len(pd.read_csv(tmp_path / "report.csv")) == n and result.summary["model_metrics"]


def test_worst_samples_follow_the_metrics_direction():
    """Dice is better high, so its worst samples are the lowest; a loss is worst high; the setting wins."""
    from aimed import metrics
    from aimed.evaluation.worst import WorstSamples, worst_direction

    assert worst_direction(None, metrics.dice()) == ("min", "the function declares direction 'max'")
    assert worst_direction(None, metrics.cross_entropy())[0] == "max"
    assert worst_direction(None, lambda t, p: 0.0)[0] == "max"
    assert worst_direction("max", metrics.dice()) == ("max", "evaluation.worst_direction")
    # A plain function of the tutorial's kind declares nothing: its name decides.
    assert worst_direction(None, lambda t, p: 0.0, "dice_coef") == ("min", "its name: higher 'dice_coef' is better")
    assert worst_direction(None, lambda t, p: 0.0, "val_IoU")[0] == "min"
    assert worst_direction(None, lambda t, p: 0.0, "abs_error")[0] == "max"
    assert worst_direction(None, lambda t, p: 0.0, "sparse categorical ce")[1].startswith("its name: lower")
    assert worst_direction(None, lambda t, p: 0.0, "grade_correct")[0] == "min"
    assert worst_direction(None, lambda t, p: 0.0, "dice_loss") == ("max", "its name: lower 'dice_loss' is better")
    assert worst_direction(None, lambda t, p: 0.0, "kappa")[1].startswith("the default")
    values = np.array([0.9, 0.1, np.nan, 0.5, 0.3])
    x = np.zeros((5, 4, 4, 1))
    worst = WorstSamples(3, "min")
    worst.add(values, 0, x, x, x, [f"id{i}" for i in range(5)])
    assert [w.data_id for w in worst.result()] == ["id2", "id1", "id4"]  # NaN first, then the lowest
    assert all(w.masks is not None for w in worst.result())  # segmentation: masks beside each image
