"""Batched eval functions for ``get_eval_funcs()``: one value per sample, computed for a whole batch at once.

Each function here takes a batch, ``f(y_true[B, ...], y_pred[B, ...]) -> values[B]``, is marked
:func:`aimed.metrics.batched` (aimed calls it on whole evaluation batches, with no
per-sample check) and declares with ``direction`` whether a higher (``"max"``) or lower
(``"min"``) value is better, which ``evaluation.worst_by`` uses to find the worst samples.
Each equals its per-sample definition below within 1e-6::

    from aimed import metrics

    class Evaluator(EvaluatorBase):
        def get_eval_funcs(self):
            return {"dice": metrics.dice(), "soft_dice": metrics.soft_dice(), "tpr": metrics.tpr()}

**Segmentation** (masks of any shape after the batch axis; ``y_true`` counts as foreground
where it is above 0.5). With a ``threshold`` the prediction is binarised (``y_pred > threshold``)
and the counts are those of the confusion matrix of each sample's pixels; with
``threshold=None`` they are soft (probabilities as fractional counts):

- Dice ``2 TP / (2 TP + FP + FN)``; IoU ``TP / (TP + FP + FN)``. A sample with no foreground in
  either mask scores 1 (a correct empty prediction).
- TPR (sensitivity, recall) ``TP / (TP + FN)``, TNR (specificity) ``TN / (TN + FP)``, precision
  ``TP / (TP + FP)``: NaN where the denominator is 0 (no foreground, no background, or no
  predicted foreground), which the summary counts as ``n_nan``.

**Classification** (``y_pred`` class scores ``[B, C]``; ``y_true`` class indices ``[B]`` or
``[B, 1]``, or one-hot rows ``[B, C]``): :func:`accuracy` (1 where the top score is the true
class) and :func:`cross_entropy` (``-log p[true class]``, probabilities clipped to
``[1e-7, 1 - 1e-7]`` as Keras does; ``from_logits=True`` for logits).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from aimed.evaluation.funcs import batched

__all__ = ["batched", "dice", "soft_dice", "iou", "soft_iou", "tpr", "tnr", "precision", "accuracy", "cross_entropy"]

#: What Keras clips probabilities to before taking their log.
EPSILON = 1e-7

MetricFunction = Callable[[Any, Any], np.ndarray]


def _metric(func: MetricFunction, name: str, direction: str) -> MetricFunction:
    func.__name__ = func.__qualname__ = name
    func.direction = direction
    return batched(func)


def _rows(values: Any) -> np.ndarray:
    """A batch as ``[B, pixels]``, without a copy where the layout allows."""
    array = np.asarray(values)
    return array.reshape(len(array), -1)


def _packed(mask: np.ndarray) -> np.ndarray:
    """A boolean ``[B, pixels]`` mask as bits, eight pixels a byte: counting and ANDs touch 8x less memory."""
    return np.packbits(mask, axis=1)


def _count(bits: np.ndarray) -> np.ndarray:
    """Per row, how many bits of a packed mask are set (exact, as float64)."""
    return np.bitwise_count(bits).sum(axis=1, dtype=np.int64).astype(np.float64)


def _counts(y_true: Any, y_pred: Any, threshold: Optional[float]):
    """Per sample: true positives, predicted positives, actual positives, and the pixel count.

    Thresholded counts come from packed boolean masks (exact integers); soft ones are float64
    sums, so they match a per-sample float64 definition within 1e-6 whatever the mask size.
    """
    truth = _rows(y_true) > 0.5
    pixels = float(truth.shape[1])
    if threshold is None:
        predicted = _rows(y_pred).astype(np.float64)
        tp = np.einsum("ij,ij->i", truth.astype(np.float64), predicted)
        return tp, predicted.sum(axis=1), _count(_packed(truth)), pixels
    truth_bits, predicted_bits = _packed(truth), _packed(_rows(y_pred) > threshold)
    return _count(truth_bits & predicted_bits), _count(predicted_bits), _count(truth_bits), pixels


def _ratio(numerator: np.ndarray, denominator: np.ndarray, when_empty: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1.0), when_empty)


def _suffix(threshold: Optional[float]) -> str:
    """How a column name shows a threshold other than the default 0.5."""
    return "" if threshold in (None, 0.5) else f"_t{threshold:g}".replace(".", "")


def dice(threshold: Optional[float] = 0.5) -> MetricFunction:
    """Dice coefficient per sample; ``threshold=None`` for the soft Dice of probabilities."""
    def func(y_true: Any, y_pred: Any) -> np.ndarray:
        tp, predicted, actual, _ = _counts(y_true, y_pred, threshold)
        return _ratio(2 * tp, predicted + actual, 1.0)

    return _metric(func, ("dice" if threshold is not None else "soft_dice") + _suffix(threshold), "max")


def soft_dice() -> MetricFunction:
    """Soft Dice per sample: ``2 sum(t p) / (sum(t) + sum(p))`` on probabilities."""
    return dice(threshold=None)


def iou(threshold: Optional[float] = 0.5) -> MetricFunction:
    """Intersection over union (Jaccard index) per sample; ``threshold=None`` for the soft IoU."""
    def func(y_true: Any, y_pred: Any) -> np.ndarray:
        tp, predicted, actual, _ = _counts(y_true, y_pred, threshold)
        return _ratio(tp, predicted + actual - tp, 1.0)

    return _metric(func, ("iou" if threshold is not None else "soft_iou") + _suffix(threshold), "max")


def soft_iou() -> MetricFunction:
    """Soft IoU per sample: ``sum(t p) / (sum(t) + sum(p) - sum(t p))`` on probabilities."""
    return iou(threshold=None)


def tpr(threshold: Optional[float] = 0.5) -> MetricFunction:
    """True positive rate (sensitivity, recall) per sample; NaN for a sample without foreground."""
    def func(y_true: Any, y_pred: Any) -> np.ndarray:
        tp, _, actual, _ = _counts(y_true, y_pred, threshold)
        return _ratio(tp, actual, np.nan)

    return _metric(func, "tpr" + _suffix(threshold), "max")


def tnr(threshold: Optional[float] = 0.5) -> MetricFunction:
    """True negative rate (specificity) per sample; NaN for a sample without background."""
    def func(y_true: Any, y_pred: Any) -> np.ndarray:
        tp, predicted, actual, pixels = _counts(y_true, y_pred, threshold)
        negatives = pixels - actual
        true_negatives = negatives - (predicted - tp)
        return _ratio(true_negatives, negatives, np.nan)

    return _metric(func, "tnr" + _suffix(threshold), "max")


def precision(threshold: Optional[float] = 0.5) -> MetricFunction:
    """Precision (positive predictive value) per sample; NaN where nothing is predicted foreground."""
    def func(y_true: Any, y_pred: Any) -> np.ndarray:
        tp, predicted, _, _ = _counts(y_true, y_pred, threshold)
        return _ratio(tp, predicted, np.nan)

    return _metric(func, "precision" + _suffix(threshold), "max")


def _class_indices(y_true: Any, n_classes: int) -> np.ndarray:
    labels = np.asarray(y_true)
    if labels.ndim == 2 and labels.shape[1] == n_classes and n_classes > 1:
        return np.argmax(labels, axis=1)
    return labels.reshape(len(labels)).astype(np.int64)


def accuracy() -> MetricFunction:
    """1.0 where the top class score is the true class, else 0.0."""
    def func(y_true: Any, y_pred: Any) -> np.ndarray:
        scores = np.asarray(y_pred)
        return (np.argmax(scores, axis=1) == _class_indices(y_true, scores.shape[1])).astype(np.float64)

    return _metric(func, "accuracy", "max")


def cross_entropy(from_logits: bool = False) -> MetricFunction:
    """``-log p[true class]`` per sample, as Keras' categorical cross-entropy of one sample."""
    def func(y_true: Any, y_pred: Any) -> np.ndarray:
        scores = np.asarray(y_pred, dtype=np.float64)
        if from_logits:
            shifted = scores - scores.max(axis=1, keepdims=True)
            log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        else:
            probabilities = scores / scores.sum(axis=1, keepdims=True)
            log_p = np.log(np.clip(probabilities, EPSILON, 1 - EPSILON))
        classes = _class_indices(y_true, scores.shape[1])
        return -log_p[np.arange(len(scores)), classes]

    return _metric(func, "cross_entropy", "min")
