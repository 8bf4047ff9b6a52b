import numpy as np

from aimed import EvaluatorBase


def _softmax(logits):
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max()
    e = np.exp(z)
    return e / e.sum()


def correct(y_true, y_pred):
    return float(np.argmax(y_true) == np.argmax(y_pred))


def prob_true_class(y_true, y_pred):
    return float(_softmax(y_pred)[np.argmax(y_true)])


def cross_entropy(y_true, y_pred):
    return float(-np.log(max(prob_true_class(y_true, y_pred), 1e-12)))


class ShapeScores(EvaluatorBase):
    """y_true: one-hot (K,), y_pred: logits (K,)"""

    def get_eval_funcs(self):
        return {
            "correct": correct,
            "p_true": prob_true_class,
            "cross_entropy": cross_entropy,
        }
