import importlib

from aimed import EvaluatorBase

per_sample = importlib.import_module("scoring.per_sample")


class DigitScorer(EvaluatorBase):
    def _set_defaults(self):
        self.metrics = ["hit", "confidence", "nll"]

    def _load_params(self, config):
        self.metrics = list(config.evaluator.get("metrics", self.metrics))
        unknown = [m for m in self.metrics if not callable(getattr(per_sample, m, None))]
        if unknown:
            raise ValueError(f"unknown per-sample metrics: {unknown}")

    def get_eval_funcs(self):
        return {name: getattr(per_sample, name) for name in self.metrics}
