"""One compiled call per evaluation batch: the predictions, and the compiled loss and metrics from them.

Calling ``predict_on_batch``, ``compute_loss`` and ``compute_metrics`` one by one costs several
eager dispatches per batch, which dominate the evaluation of a small model. One ``tf.function``
does all three in one graph, from the same predictions, as Keras' own ``test_step`` does.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable, Iterator, NamedTuple, Optional, Tuple

import numpy as np

from aimed.data import structure_map
from aimed.evaluation.batches import EvalBatch

#: ``step(x, y, sample_weight) -> (y_pred, batch loss)``; the model's metrics are updated in place.
EvalStep = Callable[[np.ndarray, np.ndarray, Optional[np.ndarray]], Tuple[Any, Any]]

# Tracing costs far more than evaluating a split of a small model, so the step is kept per model
# (as Keras keeps ``model.predict_function``) and retraced only when the model is compiled anew,
# which replaces its metric objects. Keys are weak, and the step holds the model only weakly.
_STEPS: "weakref.WeakKeyDictionary[Any, Tuple[tuple, EvalStep]]" = weakref.WeakKeyDictionary()


def eval_step(model: Any) -> EvalStep:
    """The compiled evaluation step of a compiled Keras ``model`` (built on first use, then reused).

    Call ``model.reset_metrics()`` before a pass and ``model.get_metrics_result()`` after it.
    """
    import tensorflow as tf

    metrics = tuple(model.metrics)
    cached = _STEPS.get(model)
    if cached is not None and len(cached[0]) == len(metrics) and all(a is b for a, b in zip(cached[0], metrics)):
        return cached[1]
    model_ref = weakref.ref(model)

    # reduce_retracing: a shorter last batch gives one trace with an unknown batch size, not one per size.
    @tf.function(reduce_retracing=True)
    def step(x, y, sample_weight):
        traced = model_ref()
        y_pred = traced(x, training=False)
        loss = traced.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=False)
        traced.compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        return y_pred, loss

    _STEPS[model] = (metrics, step)
    return step


class PredictedBatch(NamedTuple):
    """An evaluation batch with the model's predictions and its mean loss."""

    x: Any
    y_true: Any
    #: The sample weights (validation split) or what stands for the test split's ids.
    third: Any
    y_pred: Any
    loss: float


def predicted_batches(step: EvalStep, batches: Iterator[EvalBatch], weighted: bool) -> Iterator[PredictedBatch]:
    """Each batch with its predictions: one compiled call, its outputs fetched as numpy.

    ``weighted``: the third element is the sample weight (the validation split), not the unit weight
    standing in for the test split's ids.
    """
    for x, y_true, third in batches:
        weights = (structure_map(lambda w: np.asarray(w, dtype=np.float32), third)
                   if weighted and third is not None else None)
        y_pred, batch_loss = step(x, y_true, weights)
        yield PredictedBatch(x, y_true, third, structure_map(np.asarray, y_pred), float(batch_loss))
