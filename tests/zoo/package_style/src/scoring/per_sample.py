"""Scores of one prediction: y_true is the class index, y_pred the class probabilities."""
import numpy as np

import common.labels

EPS = 1e-7


def _unpack(y_true, y_pred):
    probs = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if probs.size != common.labels.NUM_CLASSES:
        raise ValueError(f"expected {common.labels.NUM_CLASSES} probabilities, got {probs.size}")
    return int(np.asarray(y_true).reshape(-1)[0]), probs


def hit(y_true, y_pred):
    label, probs = _unpack(y_true, y_pred)
    return float(np.argmax(probs) == label)


def confidence(y_true, y_pred):
    _, probs = _unpack(y_true, y_pred)
    return float(probs.max())


def nll(y_true, y_pred):
    label, probs = _unpack(y_true, y_pred)
    return float(-np.log(max(probs[label], EPS)))


def margin(y_true, y_pred):
    """Probability of the true digit minus the best competing one."""
    label, probs = _unpack(y_true, y_pred)
    others = np.delete(probs, label)
    return float(probs[label] - others.max())
