"""A split's preprocessed batches regrouped into evaluation batches of one fixed size.

The report has one row per data point, so the size of the batches the model sees does not
change its content. Large batches amortise the fixed cost of every call (the model, the loss
and metrics, each eval function) over many rows; the preprocessor's batch size is chosen for
training, and is often small.

Exactly ``n`` rows come out, in order, read from at most ``n_iter`` preprocessed batches: rows
that a wrapping or padded source yields past ``n`` are dropped, and nothing past them is read,
so an infinite generator is fine. Memory is bounded by the evaluation batch plus one
preprocessed batch.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, List, Optional, Tuple

import numpy as np

from aimed.data import is_tf_dataset, rows_in, split_batch, structure_map, take

#: ``(x, y, third)``: the third element is the weight or the data id, or ``None``. Each is an
#: array, or a dict (list) of arrays for a model with several inputs or outputs (weights per output).
EvalBatch = Tuple[Any, Any, Any]


def _regroupable_by_tf_data(batches: Any) -> bool:
    """A tf.data source of ``(x, y[, third])`` tensors that all have a batch axis, which ``rebatch`` needs."""
    import tensorflow as tf

    spec = batches.element_spec
    return (isinstance(spec, tuple) and len(spec) in (2, 3)
            and all(isinstance(s, tf.TensorSpec) and s.shape.rank is not None and s.shape.rank >= 1 for s in spec))


def _one_pass_options() -> Any:
    """tf.data options for reading a split once, in order: no autotuning and no default graph rewrites.

    Both pay off over the many epochs of training; over one pass they cost more than they win
    (with them, a pass of the tutorial's in-memory MNIST pipeline takes about 1.5x the CPU
    time). Maps written with ``num_parallel_calls=AUTOTUNE`` still run on every core, tf.data's
    untuned default.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.deterministic = True
    options.autotune.enabled = False
    options.experimental_optimization.apply_default_optimizations = False
    return options


def _leading_rows(leaf: Any, keep: int) -> np.ndarray:
    """The first ``keep`` rows of an array; a scalar (one weight for the whole batch) repeated ``keep`` times."""
    array = np.asarray(leaf)
    return np.full(keep, array) if array.ndim == 0 else array[:keep]


def _first_rows(batches: Iterable[Any], n: int) -> Iterator[EvalBatch]:
    """The batches as ``(x, y, third)`` numpy arrays, cut after ``n`` rows; nothing after them is read."""
    if n <= 0:
        return
    rows = 0
    for batch in batches:
        x, y, third = split_batch(batch)
        keep = min(rows_in(x), n - rows)
        def cut(value: Any, keep: int = keep) -> Any:
            return None if value is None else structure_map(lambda leaf: _leading_rows(leaf, keep), value)

        yield cut(x), cut(y), cut(third)
        rows += keep
        if rows >= n:
            return


def _concatenate(parts: List[EvalBatch]) -> EvalBatch:
    if len(parts) == 1:
        return parts[0]
    x, y, third = zip(*parts)
    def joined(*leaves: np.ndarray) -> np.ndarray:
        return np.concatenate(leaves)

    return (structure_map(joined, *x), structure_map(joined, *y),
            None if third[0] is None else structure_map(joined, *third))


def _regroup(parts: Iterable[EvalBatch], batch_size: int) -> Iterator[EvalBatch]:
    """Numpy batches of ``batch_size`` rows (the last one shorter) from batches of any sizes."""
    pending: List[EvalBatch] = []
    size = 0
    def rows(batch: EvalBatch, start: int, stop: Optional[int]) -> EvalBatch:
        return tuple(None if a is None else structure_map(lambda leaf: leaf[start:stop], a) for a in batch)

    for part in parts:
        pending.append(part)
        size += rows_in(part[0])
        if size < batch_size:
            continue
        merged = _concatenate(pending)
        full = size - size % batch_size
        for start in range(0, full, batch_size):
            yield rows(merged, start, start + batch_size)
        pending = [rows(merged, full, None)] if size > full else []
        size -= full
    if size:
        yield _concatenate(pending)


def eval_batches(batches: Any, n_iter: int, n: int, batch_size: int) -> Iterator[EvalBatch]:
    """The first ``n`` rows of ``n_iter`` preprocessed batches, as numpy batches of ``batch_size`` rows.

    A tf.data source is regrouped by tf.data itself, in its own threads ahead of the model, with
    :func:`_one_pass_options`; a generator, or a tf.data source whose elements have no common
    batch axis, in numpy.
    """
    if is_tf_dataset(batches) and _regroupable_by_tf_data(batches):
        regrouped = batches.take(n_iter).with_options(_one_pass_options()).rebatch(batch_size).prefetch(1)
        return _first_rows(regrouped.as_numpy_iterator(), n)
    return _regroup(_first_rows(take(batches, n_iter), n), batch_size)
