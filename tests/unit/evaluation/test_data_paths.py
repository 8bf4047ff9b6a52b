"""Evaluation over both example data pipelines when ``n`` is not a multiple of the batch size.

The tutorial's generator Preprocessor always yields full batches: the test generator is padded
past its end and the (infinite) validation generator wraps around to its start, so the last batch
holds rows that are not new data points. The tf.data pipeline yields a short last batch and its
ids as bytes. Either way the report must hold exactly ``n`` rows, with the real ids, in order,
each with its own label and its own prediction.
"""

from __future__ import annotations

import csv
import pathlib
import shutil
from typing import Any, Dict

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO_ROOT, deep_update, prepare_dataset

from aimed.data import eval_split, split_source, take
from aimed.errors import StageFailed
from aimed.evaluation.split import evaluate_split
from aimed.run import resolve_run

BATCH_SIZE = 8
SIZES = {"train": 8, "validation": 19, "test": 21}  # 19 = 2*8 + 3 and 21 = 2*8 + 5
RUNS = ("mnist-gen", "mnist-tf")
SPLITS = ("test", "validation")
EVAL_FUNC = "sparse categorical ce"  # the example Evaluator's one eval function


# ----------------------------------------------------------------------------- helpers






@pytest.fixture(scope="module")
def project(tmp_path_factory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("data_paths_project")
    shutil.copytree(REPO_ROOT / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    prepare_dataset(root / "data", **SIZES)
    for run in RUNS:
        config = yaml.safe_load((REPO_ROOT / "runs" / run / "config.yaml").read_text())
        deep_update(config, {"data_dir": "data", "batch_size": BATCH_SIZE, "model_builder": {"n_filters": 16}})
        (root / "runs" / run).mkdir(parents=True)
        (root / "runs" / run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


@pytest.fixture(scope="module")
def contexts(project) -> Dict[str, Any]:
    return {run: resolve_run(run, project) for run in RUNS}


@pytest.fixture(scope="module")
def model(contexts):
    """The example model, untrained: random weights give every image its own prediction."""
    import keras

    keras.utils.set_random_seed(0)
    return contexts["mnist-tf"].model_builder().get_compiled_model()


def expected_labels(project: pathlib.Path, split: str) -> pd.DataFrame:
    return pd.read_csv(project / "data" / split / "labels.csv", index_col=0)


def own_predictions(model, loader, preprocessor, split: str) -> Dict[str, np.ndarray]:
    """{data id: the model's output on that data point alone}, from the unbatched source."""
    source, n = split_source(loader, split)
    points = list(take(source, n))
    if split == "test":
        ids = [i.decode() if isinstance(i, bytes) else str(i) for _, _, i in points]
    else:
        ids = [str(i) for i in loader.get_validation_index()]
    x = np.stack([np.asarray(preprocessor.image_preprocess(p[0]), dtype=np.float32) for p in points])
    return dict(zip(ids, np.asarray(model.predict_on_batch(x))))


# ----------------------------------------------------------------------------- tests


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("split", SPLITS)
def test_batches_overrun_the_split(run, split, contexts):
    """The premise of the other tests: the batches hold more rows than the split has points."""
    ctx = contexts[run]
    prepared = eval_split(ctx.data_loader(), ctx.preprocessor(), split)
    batches, n, n_iter = prepared.batches, prepared.n, prepared.n_iter
    assert n == SIZES[split] and n_iter == 3
    sizes = [len(b[0]) for b in take(batches, n_iter)]
    if run == "mnist-gen":
        assert sizes == [BATCH_SIZE] * 3  # full-size last batch: padded or wrapped around
    else:
        assert sizes == [8, 8, n - 16]
    assert sum(sizes) >= n


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("split", SPLITS)
def test_report_has_exactly_one_row_per_data_point(run, split, contexts, model, project, tmp_path):
    ctx = contexts[run]
    loader, preprocessor = ctx.data_loader(), ctx.preprocessor()
    report_path = tmp_path / "report.csv"
    result = evaluate_split(model, loader, preprocessor, ctx.evaluator(), split, report_path)
    summary = result.summary

    with open(report_path, newline="") as f:
        rows = list(csv.DictReader(f))
    labels = expected_labels(project, split)
    n = SIZES[split]
    assert len(labels) == n
    assert len(rows) == n and summary["n"] == n

    ids = [row["data_id"] for row in rows]
    assert ids == list(labels["image name"])  # the real names, plain strings (not b'...'), in order
    assert len(set(ids)) == n

    label_of = dict(zip(labels["image name"], labels["label"]))
    assert [int(row["y_true"]) for row in rows] == [label_of[i] for i in ids]

    # Each row's prediction is the model's output on that row's own image.
    predictions = own_predictions(model, loader, preprocessor, split)
    for row in rows:
        own = predictions[row["data_id"]]
        assert int(row["pred_class"]) == int(np.argmax(own)), row["data_id"]
        assert float(row["confidence"]) == pytest.approx(float(np.max(own)), rel=1e-4, abs=1e-6)
        expected_ce = -np.log(own[label_of[row["data_id"]]])
        assert float(row[EVAL_FUNC]) == pytest.approx(float(expected_ce), rel=1e-3, abs=1e-5)

    # The summary counts exactly the n rows too.
    classification = summary["classification"]
    assert np.sum(result.confusion) == n
    support = {c: s["support"] for c, s in classification["per_class"].items() if s["support"]}
    assert support == {str(k): v for k, v in labels["label"].value_counts().items()}
    per_row_ce = np.array([float(row[EVAL_FUNC]) for row in rows])
    assert summary["metrics"][EVAL_FUNC]["mean"] == pytest.approx(per_row_ce.mean(), rel=1e-6)
    assert summary["model_metrics"]["loss"] == pytest.approx(per_row_ce.mean(), rel=1e-3)
    accuracy = np.mean([row["pred_class"] == row["y_true"] for row in rows])
    assert classification["accuracy"] == pytest.approx(accuracy)
    assert summary["model_metrics"]["sparse_categorical_accuracy"] == pytest.approx(accuracy, abs=1e-6)


def test_validation_ids_come_from_get_validation_index(contexts, model, tmp_path):
    """Validation batches carry weights, not ids: the report's ids are get_validation_index()."""
    ctx = contexts["mnist-gen"]
    loader = ctx.data_loader()

    class Renamed(type(loader)):
        def get_validation_index(self):
            return np.array([f"val-{i:02d}" for i in range(SIZES["validation"])], dtype=object)

    renamed = Renamed(ctx.config, ctx.data_dir)
    evaluate_split(model, renamed, ctx.preprocessor(), ctx.evaluator(), "validation", tmp_path / "report.csv")
    with open(tmp_path / "report.csv", newline="") as f:
        ids = [row["data_id"] for row in csv.DictReader(f)]
    assert ids == [f"val-{i:02d}" for i in range(SIZES["validation"])]


def test_validation_ids_of_the_wrong_length_fail(contexts, model, tmp_path):
    ctx = contexts["mnist-tf"]

    class Short(type(ctx.data_loader())):
        def get_validation_index(self):
            return super().get_validation_index()[:-1]

    with pytest.raises(StageFailed, match=r"get_validation_index\(\) returned 18 ids for a validation split of n=19"):
        evaluate_split(model, Short(ctx.config, ctx.data_dir), ctx.preprocessor(), ctx.evaluator(), "validation",
                       tmp_path / "report.csv")


# ----------------------------------------------------------------------------- ids beside the batches

#: Ids of every type a DataLoader may yield, and the report text of each.
ID_KINDS = {
    "str": (lambda i: f"digit_{i:04d}.png", lambda i: f"digit_{i:04d}.png"),
    "bytes": (lambda i: f"case-{i}".encode(), lambda i: f"case-{i}"),
    "int": (lambda i: 1000 + i, lambda i: str(1000 + i)),
    "numpy int64": (lambda i: np.int64(7 * i), lambda i: str(7 * i)),
    "numpy str": (lambda i: np.str_(f"n{i}"), lambda i: f"n{i}"),
    "numpy bytes": (lambda i: np.bytes_(f"b{i}".encode()), lambda i: f"b{i}"),
}


def _casting_preprocessor(base: type) -> type:
    """A generator preprocessor whose batchify casts every element of a batch to float32, ids included."""

    class CastingPreprocessor(base):
        def batchify(self, generator, n_data_points):
            def batches():
                while True:
                    rows = [next(generator) for _ in range(self.batch_size)]
                    yield tuple(np.asarray([row[k] for row in rows], dtype=np.float32) for k in range(3))

            return batches(), -(-n_data_points // self.batch_size)

    return CastingPreprocessor


@pytest.mark.parametrize("kind", sorted(ID_KINDS))
def test_ids_of_every_type_reach_the_report_through_a_casting_batchify(kind, contexts, model, tmp_path):
    """A batchify that casts everything to float32 works for training, so it must work for test too."""
    ctx = contexts["mnist-gen"]
    make_id, shown = ID_KINDS[kind]
    base_loader = ctx.data_loader()

    class Loader(type(base_loader)):
        def create_test_generator(self):
            source, n = super().create_test_generator()
            return ((x, y, make_id(i)) for i, (x, y, _) in zip(range(n), source)), n

    preprocessor = _casting_preprocessor(type(ctx.preprocessor()))(ctx.config)
    evaluate_split(model, Loader(ctx.config, ctx.data_dir), preprocessor, ctx.evaluator(), "test",
                   tmp_path / "report.csv")
    with open(tmp_path / "report.csv", newline="") as f:
        ids = [row["data_id"] for row in csv.DictReader(f)]
    assert ids == [shown(i) for i in range(SIZES["test"])]


@pytest.mark.parametrize("kind", ["bytes", "int"])
def test_tf_data_ids_are_set_aside_before_a_casting_preprocessor(kind, contexts, model, tmp_path):
    import tensorflow as tf

    ctx = contexts["mnist-tf"]
    make_id, shown = ID_KINDS[kind]

    class Loader(type(ctx.data_loader())):
        def create_test_generator(self):
            source, n = super().create_test_generator()
            ids = tf.data.Dataset.from_tensor_slices([make_id(i) for i in range(n)])
            return tf.data.Dataset.zip((source, ids)).map(lambda point, data_id: (point[0], point[1], data_id)), n

    class Casting(type(ctx.preprocessor())):
        def batchify(self, generator, n_data_points):
            batches, n_iter = super().batchify(generator, n_data_points)
            return batches.map(lambda x, y, w: (tf.cast(x, tf.float32), tf.cast(y, tf.float32),
                                                tf.cast(w, tf.float32))), n_iter

    evaluate_split(model, Loader(ctx.config, ctx.data_dir), Casting(ctx.config), ctx.evaluator(), "test",
                   tmp_path / "report.csv")
    with open(tmp_path / "report.csv", newline="") as f:
        ids = [row["data_id"] for row in csv.DictReader(f)]
    assert ids == [shown(i) for i in range(SIZES["test"])]
