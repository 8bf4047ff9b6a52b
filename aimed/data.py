"""One way to read both data styles: ``tf.data.Dataset`` and plain (possibly infinite) generators."""

from __future__ import annotations

import collections
import dataclasses
import itertools
from typing import Any, Callable, Deque, Iterator, List, Optional, Tuple

import numpy as np

from aimed.components import AugmentorBase, DataLoaderBase, PreprocessorBase
from aimed.errors import StageFailed


def is_tf_dataset(source: Any) -> bool:
    """True for a ``tf.data.Dataset``, checked without importing TensorFlow."""
    return any(
        cls.__module__.startswith("tensorflow") and cls.__name__ == "DatasetV2" for cls in type(source).__mro__
    )


def as_numpy(value: Any) -> Any:
    """A tensor, list or scalar as a numpy value; nested tuples and dicts (several inputs or outputs) keep their structure."""
    if isinstance(value, tuple):
        return tuple(as_numpy(v) for v in value)
    if isinstance(value, dict):
        return {key: as_numpy(v) for key, v in value.items()}
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


def id_text(data_id: Any) -> str:
    """A data id as the report shows it: text as is, bytes decoded, numbers as Python prints them.

    Numpy scalars and 0-d arrays count as the Python value they hold, so ``np.int64(7)`` is
    ``7`` and ``np.str_("a")`` is ``a``; bytes that are not UTF-8 keep their escapes.
    """
    if isinstance(data_id, np.ndarray) and data_id.ndim == 0:
        data_id = data_id.item()
    elif isinstance(data_id, np.generic):
        data_id = data_id.item()
    if isinstance(data_id, (bytes, bytearray)):
        return bytes(data_id).decode("utf-8", errors="backslashreplace")
    return str(data_id)


def decode_ids(ids: Any) -> List[str]:
    """:func:`id_text` of each id of a sequence or array of ids."""
    values = ids.reshape(-1).tolist() if isinstance(ids, np.ndarray) else list(ids)
    return [id_text(i) for i in values]


#: What aimed puts in the third slot of a test point before the user's preprocessing, in place of
#: the data id it carries itself: the weight the point would have in training.
UNIT_WEIGHT = 1.0


def split_source(loader: DataLoaderBase, split: str) -> Tuple[Any, int]:
    """``(source, n)`` of one split, straight from the DataLoader."""
    create = {
        "train": loader.create_training_generator,
        "validation": loader.create_validation_generator,
        "test": loader.create_test_generator,
    }[split]
    source, n = create()
    return source, int(n)


def batched_split(loader: DataLoaderBase, augmentor: Optional[AugmentorBase], preprocessor: PreprocessorBase,
                  split: str) -> Tuple[Any, int, int]:
    """``(batches, n, n_iter)`` of the training or validation split through augmentation and preprocessing.

    ``augmentor``: ``None`` leaves the split unaugmented (see :func:`augmentor_for`).
    """
    source, n = split_source(loader, split)
    if augmentor is not None:
        method = "add_augmentation" if split == "train" else "add_validation_augmentation"
        source = getattr(augmentor, method)(source)
        if source is None:
            raise StageFailed(
                f"{type(augmentor).__name__}.{method}() returned None. It must return the {split} source with the "
                f"augmentation added (a tf.data.Dataset or a generator): check for a missing return statement."
            )
    batches, n_iter = preprocessor.add_preprocess(source, n)
    return batches, n, int(n_iter)


def augmentor_for(config: Any, augmentor: Optional[AugmentorBase], split: str) -> Optional[AugmentorBase]:
    """The augmentor if the run augments ``split`` (``do_train_augmentation``, ``do_validation_augmentation``), else None."""
    switch = "do_train_augmentation" if split == "train" else "do_validation_augmentation"
    return augmentor if config.get(switch, True) else None


class SplitIds:
    """A split's data ids in the order its points are read, handed out batch by batch.

    Ids are known up front (the validation index, a tf.data source's ids) or recorded as a
    generator's points are read; either way a batch of ``k`` rows takes the next ``k``.
    """

    def __init__(self, split: str, known: Optional[List[Any]] = None, in_batches: bool = False) -> None:
        self.split = split
        self.in_batches = in_batches
        self._pending: Deque[Any] = collections.deque(known or ())

    def record(self, data_id: Any) -> None:
        self._pending.append(data_id)

    def take(self, count: int, third: Any = None) -> List[str]:
        """The ids of the next ``count`` rows, as report text; ``third`` is the batch's third element.

        With ``in_batches`` the ids came through the preprocessing unchanged, in ``third``.
        """
        if self.in_batches:
            return decode_ids(np.asarray(third)[:count])
        if len(self._pending) < count:
            raise StageFailed(
                f"the {self.split} split's preprocessing yielded more rows than the DataLoader gave points: "
                f"{count} rows came with only {len(self._pending)} ids read. A preprocessor must turn each point "
                f"into one row, in order (no shuffling, padding or filtering of the {self.split} split)."
            )
        return [id_text(self._pending.popleft()) for _ in range(count)]


@dataclasses.dataclass
class EvalSplit:
    """A split prepared for evaluation: its batches, size, and ids carried beside the batches.

    ``weighted``: the third element of each batch is the point's weight (validation); for the
    test split it is :data:`UNIT_WEIGHT`, standing in for the id.
    """

    batches: Any
    n: int
    n_iter: int
    ids: SplitIds
    weighted: bool


#: Ids read per batch from a tf.data source; with map fusion the rest of its graph is pruned.
_ID_READ_BATCH = 1024


def _tf_ids(source: Any, n: int) -> List[Any]:
    """The first ``n`` data ids of a tf.data source of ``(x, y, data_id)``, in a pass of their own.

    With map fusion, the id-only map merges into a source's own map, and TensorFlow prunes the
    ops the id does not depend on (decoding, resizing): 3% of a full pass over 3,000 PNGs. Over a
    zip of datasets (the tutorial's loader) nothing is pruned and the pass decodes everything,
    which is why ids that a preprocessing passes through stay in the batches instead
    (:func:`_ids_through_preprocessing`).
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_optimization.map_fusion = True
    ids = source.map(lambda x, y, data_id: data_id).take(n).batch(_ID_READ_BATCH).with_options(options)
    return [value for batch in ids.as_numpy_iterator() for value in np.asarray(batch).reshape(len(batch), -1)[:, 0]]


def _points(source: Any, split: str) -> Iterator[Tuple[Any, Any, Any]]:
    for index, point in enumerate(source):
        if not isinstance(point, (tuple, list)) or len(point) != 3:
            shape = f"a {type(point).__name__}" + (f" of length {len(point)}" if isinstance(point, (tuple, list)) else "")
            raise StageFailed(
                f"data point {index} of the {split} split is {shape}, not a tuple (x, y, "
                f"{'data_id' if split == 'test' else 'weight'})."
            )
        yield point


def _check_tf_points(source: Any, split: str) -> None:
    spec = source.element_spec
    if not isinstance(spec, tuple) or len(spec) != 3:
        raise StageFailed(
            f"the {split} split's tf.data source yields {spec}, not a tuple (x, y, data_id). Make "
            f"create_test_generator yield (x, y, data_id) for each point."
        )


def _ids_set_aside(source: Any, ids: SplitIds) -> Iterator[Tuple[Any, Any, float]]:
    """A generator's points with each data id recorded in ``ids`` and replaced by :data:`UNIT_WEIGHT`."""
    for x, y, data_id in _points(source, ids.split):
        ids.record(data_id)
        yield x, y, np.float32(UNIT_WEIGHT)


def eval_split(loader: DataLoaderBase, preprocessor: PreprocessorBase, split: str) -> EvalSplit:
    """The validation or test split through the preprocessor, unaugmented, with its ids set aside.

    The test split's ids leave its points before the user's preprocessing (any batchify that
    works for training works here: it sees a weight of 1.0) and are handed back batch by batch.
    Validation ids come from ``get_validation_index()``, else positions. A finite generator is
    padded (see :func:`never_exhausted`) so exactly ``n`` rows can be read from ``n_iter`` batches.
    """
    source, n = split_source(loader, split)
    if split == "test":
        ids = SplitIds(split)
        if is_tf_dataset(source):
            _check_tf_points(source, split)
            passed = _ids_through_preprocessing(source, preprocessor, n)
            if passed is not None:
                return passed
            import tensorflow as tf

            ids = SplitIds(split, _tf_ids(source, n))
            source = source.map(lambda x, y, data_id: (x, y, tf.constant(UNIT_WEIGHT, tf.float32)))
        else:
            source = _ids_set_aside(source, ids)
    else:
        index = loader.get_validation_index() if split == "validation" else None
        known = list(index) if index is not None else list(range(n))
        if len(known) != n:
            raise StageFailed(
                f"{type(loader).__name__}.get_validation_index() returned {len(known)} ids for a validation split "
                f"of n={n} points. Return one id per point, in the order create_validation_generator yields them."
            )
        ids = SplitIds(split, known)
    batches, n_iter = _preprocessed(preprocessor, prepare_eval_source(source), n, split)
    return EvalSplit(batches, n, int(n_iter), ids, weighted=split != "test")


def _preprocessed(preprocessor: PreprocessorBase, source: Any, n: int, split: str) -> Tuple[Any, int]:
    if split == "test" and type(preprocessor).add_preprocess is PreprocessorBase.add_preprocess:
        # As both abstractions generations read it: image and label preprocessing, then batchify; a
        # weight preprocessor written for training weights never sees the test split.
        source = preprocessor.add_label_preprocess(preprocessor.add_image_preprocess(source))
        return preprocessor.batchify(source, n)
    return preprocessor.add_preprocess(source, n)


def _ids_through_preprocessing(source: Any, preprocessor: PreprocessorBase, n: int) -> Optional[EvalSplit]:
    """The test split with its tf.data ids left in place, if the preprocessing passes them through unchanged.

    Most tf.data pipelines map ``(x, y, third) -> (f(x), y, third)``: then the ids come out of
    the batches in one pass, as their own dtype (checked on the pipeline's element spec). Reading
    the ids apart costs a second pass over the source when TensorFlow cannot prune its decoding
    (a zip of datasets, as the tutorial's). A pipeline that fails on the ids or changes them
    returns ``None``: the ids are then set aside.
    """
    id_spec = source.element_spec[2]
    try:
        batches, n_iter = _preprocessed(preprocessor, source, n, "test")
    except Exception:  # a preprocessing that cannot take text ids: they go aside
        return None
    spec = getattr(batches, "element_spec", None) if is_tf_dataset(batches) else None
    passed = (isinstance(spec, tuple) and len(spec) == 3 and hasattr(spec[2], "dtype") and spec[2].dtype == id_spec.dtype
              and spec[2].shape.rank == id_spec.shape.rank + 1)
    if not passed:
        return None
    return EvalSplit(batches, n, int(n_iter), SplitIds("test", in_batches=True), weighted=False)


def structure_map(func: Callable[..., Any], *values: Any) -> Any:
    """``func`` applied leaf by leaf to arrays, or to dicts, lists and tuples of arrays of one structure."""
    first = values[0]
    if isinstance(first, dict):
        return {key: structure_map(func, *(v[key] for v in values)) for key in first}
    if isinstance(first, (list, tuple)):
        return type(first)(structure_map(func, *parts) for parts in zip(*values))
    return func(*values)


def rows_in(value: Any) -> int:
    """The number of rows of an array, or of the first array of a structure."""
    if isinstance(value, dict):
        return rows_in(next(iter(value.values())))
    if isinstance(value, (list, tuple)):
        return rows_in(value[0])
    return len(value)


def row_of(value: Any, index: int) -> Any:
    """One row of an array or of each array of a structure."""
    return structure_map(lambda leaf: leaf[index], value)
