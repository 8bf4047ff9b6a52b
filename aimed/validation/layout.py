"""Checks of the tutorial's layout, ``<data_dir>/<split>/labels.csv`` beside the images it names.

The layout check reads each split's ``labels.csv`` without decoding images: missing files,
names that escape the split folder, duplicate names, labels that are not numbers (class numbers,
or a regression target; whether class numbers fit the model is the preprocessing check's job).
The image checks open the listed files, to name the ones that a failed read or differing shapes
point to. A ``labels.csv`` without the tutorial's columns is a layout of the user's own (a
segmentation index of image and mask names, say), which only the DataLoader knows.
"""

from __future__ import annotations

import collections
import os
import pathlib
from typing import Any, Dict, List

import numpy as np

LABELS_FILE = "labels.csv"
NAME_COLUMN = "image name"
LABEL_COLUMN = "label"


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
    labels_are_numbers = pd.api.types.is_numeric_dtype(df[LABEL_COLUMN]) and not pd.api.types.is_bool_dtype(df[LABEL_COLUMN])
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
        if not (labels_are_numbers and np.isfinite(label)) and not _is_number(label):
            problems.append(f"{_where(split, index)}: label {label!r} of '{name}' is not a number")
    return problems


def uses_tutorial_layout(data_dir: pathlib.Path, splits: List[str]) -> bool:
    """Whether any split has a ``labels.csv`` with the tutorial's columns (image name, label)."""
    import pandas as pd

    for split in splits:
        path = data_dir / split / LABELS_FILE
        if not path.is_file():
            continue
        try:
            columns = set(pd.read_csv(path, nrows=0).columns)
        except Exception:  # unparseable: the tutorial's file, broken (the layout check says how)
            return True
        if {NAME_COLUMN, LABEL_COLUMN} <= columns:
            return True
    return False


def _is_number(label: Any) -> bool:
    if isinstance(label, (bool, np.bool_)):
        return False
    try:
        return bool(np.isfinite(float(label)))
    except (TypeError, ValueError):
        return False


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
