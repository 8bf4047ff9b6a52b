"""Sparse class labels checked against the number of classes of a model's one class-score output.

Training would otherwise stop on a TensorFlow graph error at the first batch holding a label
outside the classes, so every label of every split is checked, not only the first batches'.
"""

from __future__ import annotations

import pathlib
from typing import Any, Dict, List, Optional

import numpy as np

from aimed.preprocessing_check.shapes import fits, shape_of, structured

#: Out-of-range labels named in a problem, at most.
LABELS_NAMED = 10


def sparse_classes(y: Any, output_shape: List[Any]) -> Optional[int]:
    """The number of classes if ``y`` holds class indices for a class-score output, else ``None``."""
    if structured(y) or len(output_shape) < 2 or output_shape[-1] is None or output_shape[-1] < 2:
        return None
    values = np.asarray(y)
    if not np.issubdtype(values.dtype, np.number):
        return None
    sparse = fits(shape_of(values), output_shape[:-1]) or fits(shape_of(values), output_shape[:-1] + [1])
    return int(output_shape[-1]) if sparse else None


class LabelCheck:
    """Sparse labels outside ``[0, classes)`` over a whole split, with where the first few were."""

    def __init__(self, classes: int) -> None:
        self.classes = classes
        self.bad: Dict[float, int] = {}
        self.where: List[str] = []

    def add(self, y: Any, rows: int, first_row: int, ids: Optional[List[str]]) -> None:
        """Check the first ``rows`` labels of a batch whose first row is ``first_row`` of the split."""
        labels = np.asarray(y).reshape(len(y), -1)[:rows]
        with np.errstate(invalid="ignore"):
            wrong = ~((labels >= 0) & (labels < self.classes) & (labels == np.round(labels)))
        for row in np.flatnonzero(wrong.any(axis=1)).tolist():
            for value in np.unique(labels[row][wrong[row]]).tolist():
                self.bad[value] = self.bad.get(value, 0) + 1
            if len(self.where) < LABELS_NAMED:
                point = f"data id '{ids[row]}'" if ids else f"point {first_row + row + 1} in batch order"
                self.where.append(f"{point} has label {labels[row][wrong[row]][0]:g}")

    def problem(self, split: str, labels_csv: Optional[pathlib.Path]) -> Optional[str]:
        """The split's problem naming the wrong labels and where they are, or ``None``."""
        if not self.bad:
            return None
        values = ", ".join(f"{value:g} ({count} point{'s' if count > 1 else ''})" for value, count in sorted(self.bad.items()))
        text = (f"{split}: labels {values} are outside the model's {self.classes} classes (0 to {self.classes - 1}): "
                + "; ".join(self.where))
        rows = _rows_with_labels(labels_csv, set(self.bad)) if labels_csv else []
        if rows:
            text += f"; in {labels_csv}: " + ", ".join(rows[:LABELS_NAMED]) + (" and more" if len(rows) > LABELS_NAMED else "")
        return text + (". Fix those labels, or give the model as many outputs as there are classes")


def _rows_with_labels(labels_csv: pathlib.Path, values: set) -> List[str]:
    """``row N (line M): 'name' label V`` of the rows of a tutorial-layout labels.csv whose label is in ``values``."""
    import pandas as pd

    try:
        frame = pd.read_csv(labels_csv)
    except Exception:  # not the tutorial's layout: the problem names the points without it
        return []
    if "label" not in frame.columns:
        return []
    names = frame["image name"] if "image name" in frame.columns else frame.index
    return [f"row {i + 1} (line {i + 2}): '{name}' label {label}" for i, (name, label) in
            enumerate(zip(names, frame["label"])) if isinstance(label, (int, float, np.number)) and label in values]
