"""validate-data: read every split through the run's DataLoader and report every problem.

Two passes of checks share one report. The layout check reads each split's ``labels.csv`` (the
tutorial's layout) without decoding images: missing files, names that escape the split folder,
duplicate names, labels that are not integers. The DataLoader pass reads exactly ``n`` points
per split, as training will, and records shapes, dtypes, labels and ids. Only when that pass
fails are the split's images decoded one by one, to name the unreadable files.
"""

from __future__ import annotations

import collections
import pathlib
from typing import Any, Dict, List

import numpy as np

from aimed._io import atomic_write_json, staged_dir
from aimed.data import SPLITS, decode_ids, is_tf_dataset, split_source
from aimed.errors import StageFailed
from aimed.fingerprint import folder_manifest, hash_cache
from aimed.run import RunContext

LABELS_FILE = "labels.csv"
NAME_COLUMN = "image name"
LABEL_COLUMN = "label"


def _csv_row(index: int) -> str:
    return f"row {index + 1} (line {index + 2})"


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
    seen: Dict[str, int] = {}
    for index, (name, label) in enumerate(zip(df[NAME_COLUMN], df[LABEL_COLUMN])):
        where = f"split '{split}', {labels_path.name} {_csv_row(index)}"
        if not isinstance(name, str) or not name.strip():
            problems.append(f"{where}: image name is empty")
            continue
        path = (split_dir / name).resolve()
        if not path.is_relative_to(root):
            problems.append(f"{where}: image name '{name}' points outside the split folder {split_dir}")
        elif not path.is_file():
            problems.append(f"{where}: image '{name}' does not exist ({path})")
        if name in seen:
            problems.append(f"{where}: image name '{name}' duplicates {_csv_row(seen[name])}")
        else:
            seen[name] = index
        if not _is_integer_label(label):
            problems.append(f"{where}: label {label!r} of '{name}' is not an integer")
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
            bad.append(f"split '{split}', {LABELS_FILE} {_csv_row(index)}: image '{name}' cannot be decoded ({exc})")
    return bad


def _label_key(y: Any) -> str:
    y = np.asarray(y)
    if y.ndim == 0:
        return str(y.item())
    if y.ndim == 1 and y.size > 1:
        return str(int(np.argmax(y)))
    return "array"


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
    shapes: collections.Counter = collections.Counter()
    dtypes: collections.Counter = collections.Counter()
    labels: collections.Counter = collections.Counter()
    third_values: List[Any] = []
    non_finite = 0
    iterator = source.take(n).as_numpy_iterator() if is_tf_dataset(source) else iter(source)
    read_failed = False
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
        x, y, third = (np.asarray(v) if not isinstance(v, bytes) else v for v in element)
        shapes[str(tuple(np.shape(x)))] += 1
        dtypes[str(np.asarray(x).dtype)] += 1
        labels[_label_key(y)] += 1
        if np.issubdtype(np.asarray(x).dtype, np.number) and not np.all(np.isfinite(x)):
            non_finite += 1
        third_values.append(third)
        summary["read"] += 1
    if read_failed:
        errors.extend(find_unreadable_images(data_dir, split))
    if non_finite:
        errors.append(f"split '{split}': {non_finite} data point(s) have NaN or inf values in x")
    if len(shapes) > 1:
        errors.append(f"split '{split}': x has {len(shapes)} different shapes: {dict(shapes)}")
    ids = decode_ids(third_values) if split == "test" and third_values else None
    if split == "validation":
        index = loader.get_validation_index()
        ids = decode_ids(index) if index is not None else None
    if ids is not None:
        duplicates = sorted(i for i, c in collections.Counter(ids).items() if c > 1)
        if duplicates:
            errors.append(f"split '{split}': duplicate data ids: {', '.join(duplicates[:20])}")
        summary["duplicate_ids"] = duplicates
    summary.update(
        x_shapes=dict(shapes),
        x_dtypes=dict(dtypes),
        label_histogram=dict(sorted(labels.items())),
    )
    return summary


def validate(loader: Any, data_dir: pathlib.Path) -> Dict[str, Any]:
    """The validation report of a dataset: per-split summaries and every error found."""
    report: Dict[str, Any] = {"splits": {}, "errors": []}
    layout_used = all((data_dir / s / LABELS_FILE).is_file() for s in SPLITS)
    for split in SPLITS:
        errors = check_layout(data_dir, split) if layout_used or (data_dir / split).is_dir() else []
        summary = read_split(loader, split, data_dir)
        errors += [e for e in summary.pop("errors") if e not in errors]
        report["splits"][split] = summary
        report["errors"] += errors
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
    report = validate(ctx.data_loader(), data_dir)
    manifest = folder_manifest(data_dir, hash_cache(ctx.project_dir))
    report["data_fingerprint"] = manifest["fingerprint"]
    with staged_dir(ctx.stage_dir("validate-data")) as out:
        atomic_write_json(out / "report.json", report)
        atomic_write_json(out / "manifest.json", manifest)
        ctx.record_fingerprint("validate-data", out)
    if not report["ok"]:
        listed = "; ".join(report["errors"][:50])
        more = f" (and {len(report['errors']) - 50} more)" if len(report["errors"]) > 50 else ""
        raise StageFailed(
            f"dataset {data_dir} of run '{ctx.name}' has {len(report['errors'])} problem(s): {listed}{more}. "
            f"Fix the files or rows named above; the full report is {ctx.stage_dir('validate-data') / 'report.json'}."
        )
    return report
