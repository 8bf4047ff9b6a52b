"""The evaluation engine; ``from aimed.evaluation import EvaluatorBase`` is the import path of ``abstractions.evaluation``."""

from aimed.components import EvaluatorBase

__all__ = ["EvaluatorBase"]
