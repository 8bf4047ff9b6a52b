"""One way to read both data styles: ``tf.data.Dataset`` and plain (possibly infinite) generators."""

from __future__ import annotations

import itertools
from typing import Any, Iterator, Tuple

import numpy as np


def is_tf_dataset(source: Any) -> bool:
    """True for a ``tf.data.Dataset``, checked without importing TensorFlow."""
    return any(
        cls.__module__.startswith("tensorflow") and cls.__name__ == "DatasetV2" for cls in type(source).__mro__
    )


def as_numpy(value: Any) -> Any:
    """A tensor, list or scalar as a numpy value; nested tuples keep their structure."""
    if isinstance(value, tuple):
        return tuple(as_numpy(v) for v in value)
    if hasattr(value, "numpy"):
        return value.numpy()
    return np.asarray(value)


def take(source: Any, count: int) -> Iterator[Any]:
    """Yield at most ``count`` elements of ``source`` as numpy values.

    A tf.data source is read with ``take``; a generator is read with ``islice``, so an infinite
    generator is never drained past ``count``.
    """
    if is_tf_dataset(source):
        yield from source.take(count).as_numpy_iterator()
    else:
        for element in itertools.islice(iter(source), count):
            yield as_numpy(element)


def never_exhausted(generator: Iterator[Any]) -> Iterator[Any]:
    """Repeat the last element after ``generator`` ends.

    The tutorial's preprocessors call ``next()`` in ``while True`` loops and full-size batching,
    which turns the end of a finite test generator into a ``RuntimeError``. Padding keeps them
    running; the rows read past the split's ``n`` are dropped by the caller.
    """
    last = None
    for last in generator:
        yield last
    if last is None:
        return
    while True:
        yield last


def prepare_eval_source(source: Any) -> Any:
    """Make a finite evaluation source safe to feed through an infinite-style preprocessor."""
    if is_tf_dataset(source):
        return source
    return never_exhausted(iter(source))


def split_batch(batch: Any) -> Tuple[Any, Any, Any]:
    """Split a batch into ``(x, y, third)``; ``third`` is the weight or the data id, or ``None``."""
    if isinstance(batch, (tuple, list)):
        if len(batch) == 3:
            return batch[0], batch[1], batch[2]
        if len(batch) == 2:
            return batch[0], batch[1], None
    raise ValueError(
        f"a batch must be a tuple (x, y, weight) or (x, y, data_id), got {type(batch).__name__}"
        + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else "")
    )


def decode_ids(ids: Any) -> list:
    """Data ids as strings: bytes are decoded, numbers formatted."""
    return [i.decode("utf-8") if isinstance(i, bytes) else str(i) for i in np.asarray(ids).reshape(-1).tolist()]


SPLITS = ("train", "validation", "test")


def split_source(loader: Any, split: str) -> Tuple[Any, int]:
    """``(source, n)`` of one split, straight from the DataLoader."""
    create = {
        "train": loader.create_training_generator,
        "validation": loader.create_validation_generator,
        "test": loader.create_test_generator,
    }[split]
    source, n = create()
    return source, int(n)


def batched_split(loader: Any, augmentor: Any, preprocessor: Any, split: str, for_eval: bool = False) -> Tuple[Any, int, int]:
    """``(batches, n, n_iter)`` of a split through augmentation and preprocessing.

    With ``for_eval`` there is no augmentation and a finite generator is padded (see
    :func:`never_exhausted`), so exactly ``n`` rows can be read from ``n_iter`` batches.
    """
    source, n = split_source(loader, split)
    if for_eval:
        source = prepare_eval_source(source)
    elif augmentor is not None:
        add = augmentor.add_augmentation if split == "train" else augmentor.add_validation_augmentation
        source = add(source)
    batches, n_iter = preprocessor.add_preprocess(source, n)
    return batches, n, int(n_iter)
