import numpy as np

from aimed import EvaluatorBase


class GlyphEvaluator(EvaluatorBase):
    def _set_defaults(self):
        super()._set_defaults()
        self.floor = 1e-6

    def _load_params(self, config):
        super()._load_params(config)
        self.floor = config.evaluator.get("probability_floor", self.floor)

    def get_eval_funcs(self):
        return {
            "correct": self.correct,
            "true_class_prob": self.true_class_prob,
            "nll": self.nll,
        }

    @staticmethod
    def correct(y_true, y_pred):
        return float(np.argmax(y_pred) == int(y_true))

    @staticmethod
    def true_class_prob(y_true, y_pred):
        return float(np.asarray(y_pred)[int(y_true)])

    def nll(self, y_true, y_pred):
        return float(-np.log(max(self.true_class_prob(y_true, y_pred), self.floor)))
