"""Apply per-sample eval functions to whole batches when that is provably the same.

``get_eval_funcs()`` keeps the tutorial's contract: ``f(y_true, y_pred)`` on one data point.
On the first batch of two or more samples aimed calls ``f`` once on the whole batch, and once
per sample on ``CHECK_SAMPLES`` samples spread over it, the first and the last included; if
the batch call returns one value per sample, equal to the per-sample results within 1e-6
relative (NaN matching NaN), the batch call's values are used, then and for every later batch. Otherwise every batch is evaluated
sample by sample. A function decorated with :func:`batched` skips the check and is always
called on batches.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Dict, Tuple

import numpy as np

from aimed.components import EvaluatorBase
from aimed.data import row_of, rows_in
from aimed.errors import ComponentError

log = logging.getLogger(__name__)

RELATIVE_TOLERANCE = 1e-6
#: Per-sample calls of the check. A function that reduces a batch fails on its shape; one that
#: mixes samples (a batch mean, a position) changes the values at both ends and in between. Each
#: call of a Keras loss costs about 2 ms, so 32 calls were a quarter of a 10,000-sample split.
CHECK_SAMPLES = 8


def batched(func: Callable) -> Callable:
    """Mark an eval function as taking batches: ``f(y_true[batch], y_pred[batch]) -> values[batch]``."""
    func.aimed_batched = True
    return func


def _to_float(value: Any) -> float:
    if hasattr(value, "numpy"):
        value = value.numpy()
    return float(np.asarray(value, dtype=np.float64).reshape(-1)[0]) if np.size(value) == 1 else float("nan")


def per_sample(func: Callable, y_true: Any, y_pred: Any) -> np.ndarray:
    """``func`` on each sample; for several outputs, each sample's ``y`` is a dict (list) of its rows."""
    if isinstance(y_true, (dict, list, tuple)) or isinstance(y_pred, (dict, list, tuple)):
        count = rows_in(y_pred)
        return np.array([_to_float(func(row_of(y_true, i), row_of(y_pred, i))) for i in range(count)],
                        dtype=np.float64)
    return np.array([_to_float(func(t, p)) for t, p in zip(y_true, y_pred)], dtype=np.float64)


def _batch_call(func: Callable, y_true: np.ndarray, y_pred: np.ndarray):
    result = func(y_true, y_pred)
    if hasattr(result, "numpy"):
        result = result.numpy()
    result = np.asarray(result, dtype=np.float64)
    return result.reshape(-1) if result.size == len(y_true) else None


class EvalFunction:
    """One named eval function, deciding on its first batch whether batch calls are safe."""

    def __init__(self, name: str, func: Callable) -> None:
        self.name = name
        self.func = func
        self.mode = "batched" if getattr(func, "aimed_batched", False) else None

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        if self.mode == "batched":
            values = _batch_call(self.func, y_true, y_pred)
            if values is None:
                raise ValueError(f"eval function '{self.name}' is marked batched but did not return one value per sample")
            return values
        if self.mode == "per_sample":
            return per_sample(self.func, y_true, y_pred)
        if isinstance(y_true, (dict, list, tuple)) or isinstance(y_pred, (dict, list, tuple)):
            self.mode = "per_sample"  # several outputs: the contract is one data point's dicts
            return per_sample(self.func, y_true, y_pred)
        if len(y_true) < 2:
            # A function that reduces a batch to one value (a Keras Loss object) returns one value
            # for a batch of one too: only a batch of two or more tells the two apart.
            return per_sample(self.func, y_true, y_pred)
        checked = np.unique(np.linspace(0, len(y_true) - 1, CHECK_SAMPLES).round().astype(int))
        started = time.perf_counter()
        reference = per_sample(self.func, y_true[checked], y_pred[checked])
        seconds_per_call = (time.perf_counter() - started) / len(checked)
        try:
            values = _batch_call(self.func, y_true, y_pred)
            problem = "did not return one value per sample" if values is None else None
        except Exception as exc:  # user function that only takes single samples
            values, problem = None, f"raised {type(exc).__name__}"
        same = values is not None and np.allclose(values[checked], reference, rtol=RELATIVE_TOLERANCE, atol=0,
                                                  equal_nan=True)
        self.mode = "batched" if same else "per_sample"
        if same:
            log.info("eval function '%s' runs batched", self.name)
            return values
        documented = bool(problem and "raised" in problem)
        hint = ("It takes one data point only, which is the documented contract" if documented
                else "A Keras Loss object averages the batch; return one value per sample (a Loss with reduction=None)")
        # Per sample is the documented contract and gives the same values: only a speed hint then.
        log.log(
            logging.INFO if documented else logging.WARNING,
            "eval function '%s' runs per sample, %.2f ms a call (%.0f s per 10,000 samples): called on a batch of %d "
            "it %s. %s. To run batched, make it take a batch and return one value per sample, and mark it "
            "@aimed.metrics.batched.",
            self.name, seconds_per_call * 1e3, seconds_per_call * 1e4, len(y_true),
            problem or "gave values other than its per-sample results", hint,
        )
        rest = np.setdiff1d(np.arange(len(y_true)), checked)
        values = np.empty(len(y_true), dtype=np.float64)
        values[checked], values[rest] = reference, per_sample(self.func, y_true[rest], y_pred[rest])
        return values


def _named(entry: Any) -> Tuple[str, Callable]:
    """``(column name, function)`` of one entry of a list returned by ``get_eval_funcs()``.

    A plain callable is named by its ``__name__``; an object with ``get_func()`` (the v0.2
    ``EvalFunc``) by the ``__name__`` of the function it gives.
    """
    if hasattr(entry, "get_func"):
        func = entry.get_func()
        return getattr(func, "__name__", None) or str(getattr(entry, "name", "")), func
    return getattr(entry, "__name__", None) or type(entry).__name__, entry


def eval_functions(evaluator: EvaluatorBase) -> Dict[str, EvalFunction]:
    """The evaluator's functions by report column: ``get_eval_funcs()`` as a ``{name: f}`` dict, or a list."""
    funcs = evaluator.get_eval_funcs()
    where = f"{type(evaluator).__name__}.get_eval_funcs()"
    if isinstance(funcs, (list, tuple)):
        named = [_named(entry) for entry in funcs]
        names = [name for name, _ in named]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ComponentError(
                f"{where} returned a list in which several functions are named {', '.join(repeated)}; report "
                f"columns need distinct names. Return a {{name: function}} dict instead."
            )
        funcs = dict(named)
    if not isinstance(funcs, dict) or not all(callable(f) for f in funcs.values()) or not funcs:
        raise ComponentError(
            f"{where} must return a non-empty {{name: function}} dict or a list of functions (or of objects with "
            f"get_func()), each f(y_true, y_pred) of one data point; it returned {funcs!r}."
        )
    return {str(name): EvalFunction(str(name), func) for name, func in funcs.items()}
