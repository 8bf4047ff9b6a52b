"""How a model's outputs read as classes: whether it is a classifier, its scores, its labels."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np


class ClassifiedBatch(NamedTuple):
    """A classifier's batch read as classes, one entry per row."""

    labels: np.ndarray  # the true class
    predicted: np.ndarray  # the class of the highest score
    correct: np.ndarray  # labels == predicted


def is_classifier(y_pred: np.ndarray, y_true: np.ndarray) -> bool:
    """A score-per-class output, with sparse labels (class indices) or one-hot (or soft) label rows.

    The label values decide, not the shapes alone: a regression with as many targets as outputs
    has the shapes of one-hot classification.
    """
    if not isinstance(y_pred, np.ndarray) or not isinstance(y_true, np.ndarray):
        return False  # several outputs: no one class per sample
    if y_pred.ndim != 2 or y_pred.shape[1] < 2 or not np.issubdtype(y_true.dtype, np.number):
        return False
    n_classes = y_pred.shape[1]
    if y_true.ndim == 1 or (y_true.ndim == 2 and y_true.shape[1] == 1):
        return bool(np.all((y_true == np.round(y_true)) & (y_true >= 0) & (y_true < n_classes)))
    if y_true.ndim == 2 and y_true.shape[1] == n_classes:
        return bool(np.all(y_true >= 0) and np.allclose(y_true.sum(axis=1), 1.0, atol=1e-6))
    return False


def outputs_are_logits(model: Any, y_pred: np.ndarray) -> bool:
    """Whether a classifier's scores are logits rather than probabilities.

    The compiled loss says so when it is a Keras loss built with ``from_logits=True``; otherwise
    the scores do: softmax rows lie in [0, 1] and sum to 1, which logits practically never all do.
    """
    losses = model.loss.values() if isinstance(getattr(model, "loss", None), dict) else [getattr(model, "loss", None)]
    if any(getattr(loss, "from_logits", False) for loss in losses):
        return True
    with np.errstate(invalid="ignore"):
        probabilities = (np.all((y_pred >= 0) & (y_pred <= 1))
                         and np.allclose(y_pred.sum(axis=1), 1.0, atol=1e-3))
    return not probabilities


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``[B, classes]`` logits."""
    shifted = np.exp(logits - np.max(logits, axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def class_labels(y_true: np.ndarray, n_classes: int) -> np.ndarray:
    """The true class of each row, from one-hot rows or from class indices."""
    y = np.asarray(y_true)
    if y.ndim == 2 and y.shape[1] == n_classes:
        return np.argmax(y, axis=1)
    return y.reshape(-1).astype(np.int64)


def classify(y_true: np.ndarray, y_pred: np.ndarray) -> ClassifiedBatch:
    """A classifier's batch as true and predicted classes."""
    labels = class_labels(y_true, y_pred.shape[1])
    predicted = np.argmax(y_pred, axis=1)
    return ClassifiedBatch(labels, predicted, labels == predicted)


def confusion_counts(batch: ClassifiedBatch, n_classes: int) -> np.ndarray:
    """The batch's ``[true, predicted]`` counts, to add to a split's confusion matrix."""
    return np.bincount(batch.labels * n_classes + batch.predicted,
                       minlength=n_classes * n_classes).reshape(n_classes, n_classes)
