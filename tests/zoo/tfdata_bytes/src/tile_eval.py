import numpy as np

from aimed import EvaluatorBase


def hit(y_true, y_pred):
    return float(int(np.argmax(y_pred)) == int(y_true))


def cross_entropy(y_true, y_pred):
    return float(-np.log(np.clip(y_pred[int(y_true)], 1e-7, 1.0)))


def margin(y_true, y_pred):
    """Probability of the true class minus the best other class."""
    probs = np.array(y_pred, dtype=float)
    true_p = probs[int(y_true)]
    probs[int(y_true)] = -np.inf
    return float(true_p - probs.max())


class TileEvaluator(EvaluatorBase):
    def get_eval_funcs(self):
        return {"hit": hit, "cross_entropy": cross_entropy, "margin": margin}
