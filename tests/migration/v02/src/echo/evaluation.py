from abstractions.evaluation import EvaluatorBase

from .metrics import DiceScore, IoUScore


class EchoEvaluator(EvaluatorBase):

    def get_eval_funcs(self):
        return [DiceScore(threshold=self.threshold), IoUScore(threshold=self.threshold)]

    def _load_params(self, config):
        self.threshold = config.evaluator.threshold

    def _set_defaults(self):
        self.threshold = 0.5
