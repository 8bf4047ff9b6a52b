"""Per-patient evaluation: correctness and the cross-entropy of the logits."""

import numpy as np

from aimed import EvaluatorBase


def correct(y_true, y_pred):
    return float(int(np.argmax(y_pred)) == int(y_true))


def cross_entropy(y_true, y_pred):
    logits = np.asarray(y_pred, dtype=np.float64)
    label = np.asarray(y_true).astype(np.int64)
    top = logits.max(axis=-1, keepdims=True)
    log_sum_exp = top[..., 0] + np.log(np.exp(logits - top).sum(axis=-1))
    picked = np.take_along_axis(logits, label[..., None], axis=-1)[..., 0]
    return log_sum_exp - picked


class DiagnosisEvaluator(EvaluatorBase):
    def get_eval_funcs(self):
        return {'correct': correct, 'cross_entropy': cross_entropy}
