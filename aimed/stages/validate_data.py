"""validate-data: read every split through the run's DataLoader and report every problem.

Two passes of checks share one report. The layout check reads each split's ``labels.csv`` (the
tutorial's layout) without decoding images: missing files, names that escape the split folder,
duplicate names, labels that are not integers. The DataLoader pass reads exactly ``n`` points
per split, as training will, and records shapes, dtypes, labels and ids. A tf.data source of
``(x, y, third)`` tensors is read in batches, which costs a fraction of reading it element by
element in Python; when a batch fails (an undecodable image, shapes that differ) the split is
read again element by element, so every point and error is counted as before. Only when that
pass fails are the split's images decoded one by one, to name the unreadable files. The sha256
manifest of the dataset is computed in a thread meanwhile: a batched pass spends its time in
TensorFlow's own threads, outside the GIL, which leaves the GIL to the hashing.
"""

from __future__ import annotations

import collections
import logging
import concurrent.futures
import os
import pathlib
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from aimed._io import atomic_write_json, staged_dir
from aimed.data import SPLITS, decode_ids, is_tf_dataset, split_source
from aimed.errors import StageFailed
from aimed.fingerprint import folder_manifest, hash_cache
from aimed.provenance import record
from aimed.run import RunContext

log = logging.getLogger(__name__)

LABELS_FILE = "labels.csv"
NAME_COLUMN = "image name"
LABEL_COLUMN = "label"
#: Data points per batch when a tf.data source is read in batches.
READ_BATCH = 256


def _csv_row(index: int) -> str:
    return f"row {index + 1} (line {index + 2})"


def _where(split: str, index: int) -> str:
    return f"split '{split}', {LABELS_FILE} {_csv_row(index)}"


def check_layout(data_dir: pathlib.Path, split: str) -> List[str]:
    """Problems in ``<data_dir>/<split>/labels.csv`` and the files it names."""
    import pandas as pd

    split_dir = data_dir / split
    labels_path = split_dir / LABELS_FILE
    if not split_dir.is_dir():
        return [f"split '{split}': folder {split_dir} is missing"]
    if not labels_path.is_file():
        return [f"split '{split}': {labels_path} is missing"]
    try:
        df = pd.read_csv(labels_path)
    except Exception as exc:  # pandas raises many parser error types
        return [f"split '{split}': {labels_path} cannot be parsed as CSV: {exc}"]
    missing = [c for c in (NAME_COLUMN, LABEL_COLUMN) if c not in df.columns]
    if missing:
        return [
            f"split '{split}': {labels_path} has no column {', '.join(repr(c) for c in missing)} "
            f"(columns: {', '.join(map(repr, df.columns))})"
        ]
    if df.empty:
        return [f"split '{split}': {labels_path} lists no images (empty split)"]
    problems = []
    root = split_dir.resolve()
    # One listing of the folder instead of resolving every name: a name listed there as a regular
    # file exists and is inside the split. Any other name (missing, nested, '..', a symlink) is
    # resolved on its own.
    with os.scandir(root) as entries:
        plain_files = {entry.name for entry in entries if entry.is_file(follow_symlinks=False)}
    labels_are_integers = pd.api.types.is_integer_dtype(df[LABEL_COLUMN])
    seen: Dict[str, int] = {}
    for index, (name, label) in enumerate(zip(df[NAME_COLUMN], df[LABEL_COLUMN])):
        if not isinstance(name, str) or not name.strip():
            problems.append(f"{_where(split, index)}: image name is empty")
            continue
        if name not in plain_files:
            path = (split_dir / name).resolve()
            if not path.is_relative_to(root):
                problems.append(f"{_where(split, index)}: image name '{name}' points outside the split folder {split_dir}")
            elif not path.is_file():
                problems.append(f"{_where(split, index)}: image '{name}' does not exist ({path})")
        if name in seen:
            problems.append(f"{_where(split, index)}: image name '{name}' duplicates {_csv_row(seen[name])}")
        else:
            seen[name] = index
        if not labels_are_integers and not _is_integer_label(label):
            problems.append(f"{_where(split, index)}: label {label!r} of '{name}' is not an integer")
    return problems


def _is_integer_label(label: Any) -> bool:
    if isinstance(label, (bool, np.bool_)):
        return False
    if isinstance(label, (int, np.integer)):
        return True
    try:
        value = float(label)
    except (TypeError, ValueError):
        return False
    return np.isfinite(value) and value == int(value)


def find_unreadable_images(data_dir: pathlib.Path, split: str) -> List[str]:
    """Images of a split that fail to decode, found by decoding each listed file."""
    import pandas as pd
    from PIL import Image

    labels_path = data_dir / split / LABELS_FILE
    try:
        names = pd.read_csv(labels_path)[NAME_COLUMN]
    except Exception:  # the layout check already reported why
        return []
    bad = []
    for index, name in enumerate(names):
        path = data_dir / split / str(name)
        if not path.is_file():
            continue
        try:
            with Image.open(path) as image:
                image.load()
        except Exception as exc:  # PIL raises format-specific error types
            bad.append(f"{_where(split, index)}: image '{name}' cannot be decoded ({exc})")
    return bad


def find_odd_sized_images(data_dir: pathlib.Path, split: str) -> List[str]:
    """Images listed in a split's labels.csv whose size differs from the most common one (headers only)."""
    import pandas as pd
    from PIL import Image

    try:
        names = pd.read_csv(data_dir / split / LABELS_FILE)[NAME_COLUMN]
    except Exception:  # no tutorial layout: the shapes error names data points instead
        return []
    sizes: Dict[int, tuple] = {}
    for index, name in enumerate(names):
        try:
            with Image.open(data_dir / split / str(name)) as image:
                sizes[index] = (image.width, image.height, len(image.getbands()))
        except Exception:  # missing or undecodable: reported by the layout and decode checks
            continue
    if not sizes:
        return []
    usual = collections.Counter(sizes.values()).most_common(1)[0][0]
    return [f"{_where(split, index)}: image '{names[index]}' is {w}x{h} with {c} channel(s), but the split's "
            f"images are {usual[0]}x{usual[1]} with {usual[2]}" for index, (w, h, c) in sizes.items()
            if (w, h, c) != usual]


class _Tally:
    """Shapes, dtypes, labels and non-finite x of the data points read so far, and the test split's ids."""

    def __init__(self, keep_ids: bool) -> None:
        self.read = 0
        self.shapes: collections.Counter = collections.Counter()
        #: The position of the first data point of each shape, to name one when shapes differ.
        self.first_at: Dict[str, int] = {}
        self.dtypes: collections.Counter = collections.Counter()
        self.labels: collections.Counter = collections.Counter()
        self.non_finite = 0
        self.ids: Optional[List[np.ndarray]] = [] if keep_ids else None

    def add(self, x: np.ndarray, y: np.ndarray, third: np.ndarray) -> None:
        """Count a batch: ``x``, ``y`` and ``third`` hold its data points along their first axis."""
        count = len(x)
        self.first_at.setdefault(str(x.shape[1:]), self.read)
        self.read += count
        self.shapes[str(x.shape[1:])] += count
        self.dtypes[str(x.dtype)] += count
        # Integers are always finite, so only floating x needs the per-element scan.
        if np.issubdtype(x.dtype, np.inexact):
            point_axes = tuple(range(1, x.ndim))
            self.non_finite += int(np.count_nonzero(~np.isfinite(x).all(axis=point_axes)))
        # A label is a class number (scalar), a one-hot or score vector (its argmax), a dict or list
        # (several outputs: "structured"), or else "array".
        if y.dtype == object:
            keys = None
            self.labels["structured"] += count
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

    def add_points(self, points: List[Tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        """Count data points read one by one, stacked into one batch when that changes nothing.

        Stacking needs equal shapes; x must also share its dtype (counted per dtype), and y and
        the third value their kind of dtype, since stacking 3 with 3.0 would count label "3.0".
        """
        kinds = {(x.shape, x.dtype, y.shape, y.dtype.kind, third.shape, third.dtype.kind) for x, y, third in points}
        if len(kinds) == 1:
            self.add(*(np.stack(values) for values in zip(*points)))
        else:
            for point in points:
                self.add(*(value[np.newaxis] for value in point))


def _batchable(source: Any) -> bool:
    """True for a tf.data source of three plain tensors, which reads the same in batches."""
    if not is_tf_dataset(source):
        return False
    import tensorflow as tf

    spec = source.element_spec
    return isinstance(spec, tuple) and len(spec) == 3 and all(isinstance(s, tf.TensorSpec) for s in spec)


def _read_batches(source: Any, n: int, keep_ids: bool) -> Optional[_Tally]:
    """The tally of ``n`` points of a batchable tf.data source, or ``None`` if a batch failed."""
    tally = _Tally(keep_ids)
    batches = source.take(n).batch(READ_BATCH).prefetch(1).as_numpy_iterator()
    while True:
        try:
            x, y, third = next(batches)
        except StopIteration:
            return tally
        except Exception:  # an image that does not decode, or points of different shapes
            return None
        tally.add(x, y, third)


def _read_elements(source: Any, n: int, split: str, tally: _Tally, errors: List[str]) -> bool:
    """Read ``n`` points one by one into ``tally``, recording errors; True if reading a point raised."""
    iterator = source.take(n).as_numpy_iterator() if is_tf_dataset(source) else iter(source)
    read_failed = False
    pending: List[Tuple[np.ndarray, np.ndarray, np.ndarray]] = []
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
        pending.append(tuple(np.asarray(v) for v in element))
        if len(pending) == READ_BATCH:
            tally.add_points(pending)
            pending = []
    if pending:
        tally.add_points(pending)
    return read_failed


def read_split(loader: Any, split: str, data_dir: pathlib.Path) -> Dict[str, Any]:
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
    tally = _read_batches(source, n, keep_ids) if _batchable(source) else None
    read_failed = False
    if tally is None:  # not batchable, or a batch failed: read again point by point to name the errors
        tally = _Tally(keep_ids)
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
    return summary


def validate(loader: Any, data_dir: pathlib.Path) -> Dict[str, Any]:
    """The validation report of a dataset: per-split summaries and every error found."""
    report: Dict[str, Any] = {"splits": {}, "errors": []}
    # The tutorial's layout is checked when any split uses it: split folders alone (images beside one
    # labels file at the top, say) are another layout, which only the DataLoader knows.
    layout_used = any((data_dir / s / LABELS_FILE).is_file() for s in SPLITS)
    for split in SPLITS:
        errors = check_layout(data_dir, split) if layout_used else []
        summary = read_split(loader, split, data_dir)
        errors += [e for e in summary.pop("errors") if e not in errors]
        report["splits"][split] = summary
        report["errors"] += errors
    report["warnings"] = [w for summary in report["splits"].values() for w in summary.get("warnings", [])]
    report["ok"] = not report["errors"]
    return report


def run(ctx: RunContext) -> Dict[str, Any]:
    """Validate the run's dataset; write ``report.json`` and ``manifest.json``; fail on any error."""
    data_dir = ctx.data_dir
    if not data_dir.is_dir():
        raise StageFailed(
            f"{ctx.config.source}: key 'data_dir' is '{ctx.config.data_dir}', but {data_dir} is not a folder. "
            f"Create the dataset (for the example: snakemake prepare_data) or fix the key."
        )
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        manifest_job = pool.submit(folder_manifest, data_dir, hash_cache(ctx.project_dir))
        report = validate(ctx.data_loader(), data_dir)
        manifest = manifest_job.result()
    report["data_fingerprint"] = manifest["fingerprint"]
    with staged_dir(ctx.stage_dir("validate-data")) as out:
        atomic_write_json(out / "report.json", report)
        atomic_write_json(out / "manifest.json", manifest)
        # Only a passing validation is recorded: the fingerprint is what tells Snakemake the job
        # finished, and a failed job's report is kept for reading.
        if report["ok"]:
            record(ctx.config, ctx.project_dir, "validate-data", out, data_fingerprint=manifest["fingerprint"])
    if not report["ok"]:
        listed = "; ".join(report["errors"][:50])
        more = f" (and {len(report['errors']) - 50} more)" if len(report["errors"]) > 50 else ""
        raise StageFailed(
            f"dataset {data_dir} of run '{ctx.name}' has {len(report['errors'])} problem(s): {listed}{more}. "
            f"Fix the files or rows named above; the full report is {ctx.stage_dir('validate-data') / 'report.json'}."
        )
    return report
