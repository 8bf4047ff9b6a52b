"""Overlap scores between one ground-truth mask and one predicted probability map."""
import numpy as np


def binarize(probabilities, threshold=0.5):
    return np.asarray(probabilities) >= threshold


def dice(truth, prediction):
    truth, prediction = np.asarray(truth, bool), np.asarray(prediction, bool)
    denom = truth.sum() + prediction.sum()
    if denom == 0:
        return 1.0  # both empty: perfect agreement
    return float(2.0 * np.logical_and(truth, prediction).sum() / denom)


def iou(truth, prediction):
    truth, prediction = np.asarray(truth, bool), np.asarray(prediction, bool)
    union = np.logical_or(truth, prediction).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(truth, prediction).sum() / union)


def area_error(truth, prediction):
    """Predicted minus true lesion area, as a fraction of the slice."""
    truth, prediction = np.asarray(truth, bool), np.asarray(prediction, bool)
    return float((prediction.sum() - truth.sum()) / truth.size)
