"""aimed.evaluation.step: one compiled call per batch for predictions, loss and metrics."""

from __future__ import annotations

import numpy as np
import pytest

from aimed.evaluation.step import PredictedBatch, eval_step, predicted_batches

keras = pytest.importorskip("keras")


def _model(seed: int = 0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(3,))
    outputs = keras.layers.Dense(2, activation="softmax")(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _batches():
    rng = np.random.default_rng(1)
    for size in (4, 4, 2):  # a shorter last batch
        x = rng.normal(size=(size, 3)).astype(np.float32)
        y = rng.integers(0, 2, size=size)
        weights = np.linspace(0.0, 1.0, size)
        yield x, y, weights


def test_eval_step_is_kept_per_model_and_rebuilt_on_recompile():
    model = _model()
    step = eval_step(model)
    assert eval_step(model) is step
    assert eval_step(_model(1)) is not step
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    assert eval_step(model) is not step


def test_predicted_batches_give_the_models_predictions_loss_and_metrics():
    model = _model()
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    batches = list(_batches())
    model.reset_metrics()
    out = list(predicted_batches(eval_step(model), iter(batches), weighted=False))
    assert len(out) == 3 and all(isinstance(b, PredictedBatch) for b in out)
    correct = 0
    for (x, y, third), got in zip(batches, out):
        assert got.x is x and got.y_true is y and got.third is third
        assert isinstance(got.y_pred, np.ndarray) and got.y_pred.shape == (len(x), 2)
        expected = np.asarray(model(x, training=False))
        np.testing.assert_allclose(got.y_pred, expected, rtol=1e-5, atol=1e-6)
        assert isinstance(got.loss, float)
        assert got.loss == pytest.approx(float(loss_fn(y, expected)), rel=1e-5)
        correct += int((expected.argmax(axis=1) == y).sum())
    assert float(model.get_metrics_result()["accuracy"]) == pytest.approx(correct / 10)


def test_weighted_batches_pass_the_third_element_as_sample_weight():
    model = _model()
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    batches = list(_batches())
    step = eval_step(model)
    weighted = list(predicted_batches(step, iter(batches), weighted=True))
    unweighted = list(predicted_batches(step, iter(batches), weighted=False))
    for (x, y, w), a, b in zip(batches, weighted, unweighted):
        y_pred = np.asarray(model(x, training=False))
        assert a.loss == pytest.approx(float(loss_fn(y, y_pred, sample_weight=w)), rel=1e-5)
        assert b.loss == pytest.approx(float(loss_fn(y, y_pred)), rel=1e-5)
        assert a.loss != pytest.approx(b.loss)


def test_weighted_batches_without_weights_are_unweighted():
    model = _model()
    x = np.ones((3, 3), dtype=np.float32)
    y = np.array([0, 1, 1])
    (batch,) = predicted_batches(eval_step(model), iter([(x, y, None)]), weighted=True)
    y_pred = np.asarray(model(x, training=False))
    assert batch.loss == pytest.approx(float(keras.losses.SparseCategoricalCrossentropy()(y, y_pred)), rel=1e-5)
    assert batch.third is None
