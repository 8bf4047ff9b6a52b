"""Per-sample evaluation functions.

Each function takes ONE data point: ``y_true`` (H, W, 1) binary mask and ``y_pred`` (H, W, 1) probabilities.
"""

from abc import ABC, abstractmethod

import numpy as np


class EvalFunc(ABC):
    """What ``Evaluator.get_eval_funcs`` returns: a named, described per-sample metric."""

    @property
    @abstractmethod
    def name(self):
        """Column name in the report."""

    @property
    @abstractmethod
    def description(self):
        """One-line description of the metric."""

    @abstractmethod
    def get_func(self):
        """Returns ``f(y_true, y_pred) -> float``."""


def _binarize(y_true, y_pred, threshold):
    gt = np.asarray(y_true) > 0.5
    pred = np.asarray(y_pred) >= threshold
    return gt, pred


class DiceScore(EvalFunc):

    def __init__(self, threshold=0.5):
        self.threshold = threshold

    @property
    def name(self):
        return 'dice'

    @property
    def description(self):
        return f'Dice coefficient of the cavity, prediction thresholded at {self.threshold}'

    def get_func(self):
        threshold = self.threshold

        def dice(y_true, y_pred):
            gt, pred = _binarize(y_true, y_pred, threshold)
            denominator = gt.sum() + pred.sum()
            if denominator == 0:
                return 1.0
            return float(2.0 * np.logical_and(gt, pred).sum() / denominator)

        return dice


class IoUScore(EvalFunc):

    def __init__(self, threshold=0.5):
        self.threshold = threshold

    @property
    def name(self):
        return 'iou'

    @property
    def description(self):
        return f'Intersection over union of the cavity, prediction thresholded at {self.threshold}'

    def get_func(self):
        threshold = self.threshold

        def iou(y_true, y_pred):
            gt, pred = _binarize(y_true, y_pred, threshold)
            union = np.logical_or(gt, pred).sum()
            if union == 0:
                return 1.0
            return float(np.logical_and(gt, pred).sum() / union)

        return iou
