"""aimed.metrics: each batched function equals its per-sample definition, one value per sample."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, jaccard_score, precision_score, recall_score

from aimed import metrics
from aimed.evaluation.funcs import EvalFunction


def _masks(n: int = 40, side: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    y_true = (rng.random((n, side, side, 1)) > 0.7).astype(np.float32)
    y_pred = rng.random((n, side, side, 1)).astype(np.float32)
    y_true[0] = 0  # empty truth, some predicted
    y_true[1], y_pred[1] = 0, 0.1  # both empty
    y_true[2], y_pred[2] = 1, 0.9  # all foreground
    return y_true, y_pred


def _per_sample_sklearn(name: str, t: np.ndarray, p: np.ndarray, threshold: float) -> float:
    """The per-sample definition, with scikit-learn's per-sample scores where one exists."""
    truth, predicted = t.reshape(-1) > 0.5, p.reshape(-1) > threshold
    if name == "dice":
        return 1.0 if not truth.any() and not predicted.any() else f1_score(truth, predicted)
    if name == "iou":
        return 1.0 if not truth.any() and not predicted.any() else jaccard_score(truth, predicted)
    if name == "tpr":
        return recall_score(truth, predicted) if truth.any() else np.nan
    if name == "tnr":
        return recall_score(~truth, ~predicted) if (~truth).any() else np.nan
    if name == "precision":
        return precision_score(truth, predicted) if predicted.any() else np.nan
    raise KeyError(name)


def _per_sample_soft(name: str, t: np.ndarray, p: np.ndarray) -> float:
    truth, prob = (t.reshape(-1) > 0.5).astype(np.float64), p.reshape(-1).astype(np.float64)
    tp = float(np.sum(truth * prob))
    if name == "dice":
        denominator = truth.sum() + prob.sum()
        return 1.0 if denominator == 0 else 2 * tp / denominator
    if name == "iou":
        denominator = truth.sum() + prob.sum() - tp
        return 1.0 if denominator == 0 else tp / denominator
    if name == "tpr":
        return tp / truth.sum() if truth.sum() else np.nan
    if name == "tnr":
        return float(np.sum((1 - truth) * (1 - prob)) / (1 - truth).sum()) if (1 - truth).sum() else np.nan
    if name == "precision":
        return tp / prob.sum() if prob.sum() else np.nan
    raise KeyError(name)


@pytest.mark.parametrize("name", ["dice", "iou", "tpr", "tnr", "precision"])
@pytest.mark.parametrize("threshold", [0.5, 0.3, None])
def test_segmentation_metrics_equal_their_per_sample_definitions(name, threshold):
    y_true, y_pred = _masks()
    func = getattr(metrics, name)(threshold=threshold)
    values = func(y_true, y_pred)
    assert values.shape == (len(y_true),)
    expected = [(_per_sample_soft(name, t, p) if threshold is None else _per_sample_sklearn(name, t, p, threshold))
                for t, p in zip(y_true, y_pred)]
    np.testing.assert_allclose(values, expected, rtol=1e-6, atol=1e-6, equal_nan=True)
    assert func.direction == "max"
    assert EvalFunction(func.__name__, func).mode == "batched"  # no per-sample check


def test_soft_aliases_and_column_names():
    y_true, y_pred = _masks()
    np.testing.assert_array_equal(metrics.soft_dice()(y_true, y_pred), metrics.dice(None)(y_true, y_pred))
    np.testing.assert_array_equal(metrics.soft_iou()(y_true, y_pred), metrics.iou(None)(y_true, y_pred))
    assert [f.__name__ for f in (metrics.dice(), metrics.soft_dice(), metrics.iou(0.3), metrics.tnr())] == [
        "dice", "soft_dice", "iou_t03", "tnr"]


@pytest.mark.parametrize("label_kind", ["sparse", "column", "one-hot"])
def test_classification_metrics_equal_keras_per_sample(label_kind):
    import keras

    rng = np.random.default_rng(1)
    logits = rng.normal(size=(30, 5)).astype(np.float32)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    classes = rng.integers(0, 5, 30)
    y_true = {"sparse": classes, "column": classes[:, None], "one-hot": np.eye(5)[classes]}[label_kind]
    np.testing.assert_array_equal(metrics.accuracy()(y_true, probabilities), classes == probabilities.argmax(1))
    keras_ce = [float(keras.losses.sparse_categorical_crossentropy(np.array([c]), p[None])[0])
                for c, p in zip(classes, probabilities)]
    np.testing.assert_allclose(metrics.cross_entropy()(y_true, probabilities), keras_ce, rtol=1e-5)
    np.testing.assert_allclose(metrics.cross_entropy(from_logits=True)(y_true, logits), keras_ce, rtol=1e-5)
    assert metrics.cross_entropy().direction == "min" and metrics.accuracy().direction == "max"
