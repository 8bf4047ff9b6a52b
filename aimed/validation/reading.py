"""Reading a split through the DataLoader as training will: exactly ``n`` points, their shapes, dtypes, labels and ids.

A tf.data source of ``(x, y, third)`` tensors is read in batches, which costs a fraction of
reading it element by element in Python; when a batch fails (an undecodable image, shapes that
differ) the split is read again element by element, so every point and error is counted as
before. Only when that pass fails are the split's images decoded one by one, to name the
unreadable files.
"""

from __future__ import annotations

import collections
import logging
import pathlib
from typing import Any, Dict, List, NamedTuple, Optional

import numpy as np

from aimed.components import DataLoaderBase
from aimed.data import decode_ids, is_tf_dataset, split_source, structure_map
from aimed.validation.layout import find_odd_sized_images, find_unreadable_images

# The validate-data stage's logger: its warnings keep the name they were logged under before the
# engine left the stage module, so filters and captured logs that select it still see them.
log = logging.getLogger("aimed.stages.validate_data")

#: Data points per batch when a tf.data source is read in batches.
READ_BATCH = 256


class Point(NamedTuple):
    """One data point as the DataLoader yields it, as arrays."""

    x: np.ndarray
    y: np.ndarray
    third: np.ndarray  # the weight, or the test split's data id


def _inputs(x: Any) -> Dict[str, np.ndarray]:
    """A batch's x by input name: ``{"": x}`` for one array, the keys (list positions) of a structure."""
    if isinstance(x, dict):
        return {str(name): np.asarray(value) for name, value in x.items()}
    if isinstance(x, (list, tuple)):
        return {str(index): np.asarray(value) for index, value in enumerate(x)}
    return {"": np.asarray(x)}


def _per_input(values: Dict[str, Any], x: Any) -> str:
    """The report text of one property of x: as it is for one array, by input for several."""
    return str(values[""]) if set(values) == {""} and not isinstance(x, (dict, list, tuple)) else str(values)


class Tally:
    """Shapes, dtypes, labels and non-finite x of the data points read so far, and the test split's ids."""

    def __init__(self, keep_ids: bool) -> None:
        self.read = 0
        self.shapes: collections.Counter = collections.Counter()
        #: The position of the first data point of each shape, to name one when shapes differ.
        self.first_at: Dict[str, int] = {}
        self.dtypes: collections.Counter = collections.Counter()
        self.labels: collections.Counter = collections.Counter()
        #: ``[min, max]`` of the finite continuous labels, if any.
        self.label_range: Optional[List[float]] = None
        self.non_finite = 0
        self.ids: Optional[List[np.ndarray]] = [] if keep_ids else None

    def add(self, x: Any, y: np.ndarray, third: np.ndarray) -> None:
        """Count a batch: ``x``, ``y`` and ``third`` hold its data points along their first axis.

        ``x`` is an array, or a dict (list) of arrays for a model with several inputs: its shape
        and dtype are then counted per input (``{'image': (32, 32, 1), 'clinical': (3,)}``).
        """
        inputs = _inputs(x)
        count = len(next(iter(inputs.values())))
        shape = _per_input({name: a.shape[1:] for name, a in inputs.items()}, x)
        self.first_at.setdefault(shape, self.read)
        self.read += count
        self.shapes[shape] += count
        self.dtypes[_per_input({name: str(a.dtype) for name, a in inputs.items()}, x)] += count
        bad = np.zeros(count, dtype=bool)
        for array in inputs.values():
            # Integers are always finite, so only floating x needs the per-element scan.
            if np.issubdtype(array.dtype, np.inexact):
                bad |= ~np.isfinite(array).all(axis=tuple(range(1, array.ndim)))
        self.non_finite += int(np.count_nonzero(bad))
        # A label is a class number (scalar), a one-hot or score vector (its argmax), a dict or list
        # (several outputs: "structured"), a regression target (a float scalar that is not a whole
        # number: "continuous", with its range; a bucket per value would grow with the dataset), or
        # else "array".
        if y.dtype == object:
            keys = None
            self.labels["structured"] += count
        elif y.ndim == 1 and np.issubdtype(y.dtype, np.floating) and not np.all(np.mod(y, 1) == 0):
            keys = None
            self.labels["continuous"] += count
            finite = y[np.isfinite(y)]
            if finite.size:
                low, high = float(finite.min()), float(finite.max())
                self.label_range = [min(low, self.label_range[0]), max(high, self.label_range[1])] \
                    if self.label_range else [low, high]
        elif y.ndim == 1:
            keys = y
        elif y.ndim == 2 and y.shape[1] > 1:
            keys = np.argmax(y, axis=1)
        else:
            keys = None
            self.labels["array"] += count
        if keys is not None:
            values, counts = np.unique(keys, return_counts=True)
            for value, value_count in zip(values.tolist(), counts.tolist()):
                self.labels[str(value)] += value_count
        if self.ids is not None:
            self.ids.append(third)

    def add_points(self, points: List[Point]) -> None:
        """Count data points read one by one, stacked into one batch when that changes nothing.

        Stacking needs equal shapes; x must also share its dtype (counted per dtype), and y and
        the third value their kind of dtype, since stacking 3 with 3.0 would count label "3.0".
        """
        kinds = {(x.shape, x.dtype, y.shape, y.dtype.kind, third.shape, third.dtype.kind)
                 for x, y, third in points if isinstance(x, np.ndarray)}
        if len(kinds) == 1 and all(isinstance(point[0], np.ndarray) for point in points):
            self.add(*(np.stack(values) for values in zip(*points)))
        else:
            for point in points:
                self.add(*(structure_map(lambda leaf: leaf[np.newaxis], value) for value in point))


def batchable(source: Any) -> bool:
    """True for a tf.data source of three plain tensors, which reads the same in batches."""
    if not is_tf_dataset(source):
        return False
    import tensorflow as tf

    spec = source.element_spec
    return isinstance(spec, tuple) and len(spec) == 3 and all(isinstance(s, tf.TensorSpec) for s in spec)


def read_batches(source: Any, n: int, keep_ids: bool) -> Optional[Tally]:
    """The tally of ``n`` points of a batchable tf.data source, or ``None`` if a batch failed."""
    tally = Tally(keep_ids)
    batches = source.take(n).batch(READ_BATCH).prefetch(1).as_numpy_iterator()
    while True:
        try:
            x, y, third = next(batches)
        except StopIteration:
            return tally
        except Exception:  # an image that does not decode, or points of different shapes
            return None
        tally.add(x, y, third)


def _read_elements(source: Any, n: int, split: str, tally: Tally, errors: List[str]) -> bool:
    """Read ``n`` points one by one into ``tally``, recording errors; True if reading a point raised."""
    iterator = source.take(n).as_numpy_iterator() if is_tf_dataset(source) else iter(source)
    read_failed = False
    pending: List[Point] = []
    for index in range(n):
        try:
            element = next(iterator)
        except StopIteration:
            errors.append(f"split '{split}': the source ended after {index} of n={n} data points")
            break
        except Exception as exc:  # a decode or user error for this point
            read_failed = True
            errors.append(f"split '{split}': reading data point {index} raised {type(exc).__name__}: {str(exc).splitlines()[0]}")
            if is_tf_dataset(source):
                continue
            break
        if not isinstance(element, (tuple, list)) or len(element) != 3:
            errors.append(
                f"split '{split}': data point {index} is a {type(element).__name__}, not a tuple "
                f"(x, y, {'data_id' if split == 'test' else 'weight'})"
            )
            break
        x, y, third = element
        # x of several inputs stays a structure of arrays; a dict y counts as one "structured" label.
        pending.append(Point(structure_map(np.asarray, x), np.asarray(y), np.asarray(third)))
        if len(pending) == READ_BATCH:
            tally.add_points(pending)
            pending = []
    if pending:
        tally.add_points(pending)
    return read_failed


def read_split(loader: DataLoaderBase, split: str, data_dir: pathlib.Path) -> Dict[str, Any]:
    """Read exactly ``n`` points of a split through the DataLoader and summarise them."""
    summary: Dict[str, Any] = {"n": None, "read": 0, "errors": []}
    errors = summary["errors"]
    creator = f"{type(loader).__name__}.create_{'training' if split == 'train' else split}_generator()"
    try:
        source, n = split_source(loader, split)
    except Exception as exc:  # user code: report whatever it raised
        errors.append(f"split '{split}': {creator} raised {type(exc).__name__}: {exc}")
        return summary
    summary["n"] = n
    if n <= 0:
        errors.append(f"split '{split}': {creator} reports n={n} data points (empty split)")
        return summary
    keep_ids = split == "test"
    tally = read_batches(source, n, keep_ids) if batchable(source) else None
    read_failed = False
    if tally is None:  # not batchable, or a batch failed: read again point by point to name the errors
        tally = Tally(keep_ids)
        read_failed = _read_elements(source, n, split, tally, errors)
    elif tally.read < n:
        errors.append(f"split '{split}': the source ended after {tally.read} of n={n} data points")
    summary["read"] = tally.read
    if read_failed:
        errors.extend(find_unreadable_images(data_dir, split))
    if tally.non_finite:
        errors.append(f"split '{split}': {tally.non_finite} data point(s) have NaN or inf values in x")
    if len(tally.shapes) > 1:
        usual = tally.shapes.most_common(1)[0][0]
        firsts = "; ".join(f"the first of shape {shape} is data point {tally.first_at[shape]}"
                           for shape in tally.shapes if shape != usual)
        errors.append(f"split '{split}': x has {len(tally.shapes)} different shapes: {dict(tally.shapes)}; {firsts}")
        errors.extend(find_odd_sized_images(data_dir, split))
    ids = decode_ids(np.concatenate(tally.ids)) if tally.ids else None
    if split == "validation":
        index = loader.get_validation_index()
        ids = decode_ids(index) if index is not None else None
    if ids is not None:
        duplicates = sorted(i for i, c in collections.Counter(ids).items() if c > 1)
        if duplicates:
            # Not an error: several points may belong to one case (EchoNet's ES and ED frames of one
            # patient). The evaluation report keeps them apart by their row.
            summary["warnings"] = [f"split '{split}': {len(duplicates)} data ids are shared by several points "
                                   f"({', '.join(duplicates[:20])}); the report tells them apart by its 'row' column"]
            log.warning("%s", summary["warnings"][0])
        summary["duplicate_ids"] = duplicates
    summary.update(
        x_shapes=dict(tally.shapes),
        x_dtypes=dict(tally.dtypes),
        label_histogram=dict(sorted(tally.labels.items())),
    )
    if tally.label_range is not None:
        summary["label_range"] = tally.label_range
    return summary
