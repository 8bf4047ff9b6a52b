"""Per-point evaluation of the blob models."""
import numpy as np

from aimed import EvaluatorBase


def _scalar(value):
    return float(np.asarray(value, dtype=np.float64).reshape(-1)[0])


def absolute_error(y_true, y_pred):
    return abs(_scalar(y_true) - _scalar(y_pred))


def squared_error(y_true, y_pred):
    return (_scalar(y_true) - _scalar(y_pred)) ** 2


class RadiusScores(EvaluatorBase):
    def get_eval_funcs(self):
        return {"abs_error": absolute_error, "squared_error": squared_error}


class SizeKindScores(EvaluatorBase):
    def _set_defaults(self):
        super()._set_defaults()
        self.eps = 1e-7

    def _load_params(self, config):
        super()._load_params(config)
        self.eps = float(config.evaluator.get("eps", self.eps))

    def get_eval_funcs(self):
        eps = self.eps

        def size_abs_error(y_true, y_pred):
            return absolute_error(y_true["size"], y_pred["size"])

        def kind_correct(y_true, y_pred):
            return float(int(np.argmax(y_pred["kind"])) == int(_scalar(y_true["kind"])))

        def kind_log_loss(y_true, y_pred):
            p = np.asarray(y_pred["kind"], dtype=np.float64).reshape(-1)
            return float(-np.log(max(p[int(_scalar(y_true["kind"]))], eps)))

        return {
            "size_abs_error": size_abs_error,
            "kind_correct": kind_correct,
            "kind_log_loss": kind_log_loss,
        }
