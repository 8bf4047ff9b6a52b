"""A run's batches, pulled through augmentor and preprocessor, checked against the compiled model.

The training and validation splits are read as training reads them, the test split as
evaluation reads it (ids set aside, see :func:`aimed.data.eval_split`). For each split it
checks that x, y and weight batches have shapes and dtypes the compiled model accepts, that
every value is finite, that ``n_iter`` batches of ``batch_size`` cover the ``n`` points exactly
once, and that one ``test_on_batch`` runs. For a model with one class-score output and sparse
labels, every label of every split is checked against the number of classes
(:mod:`aimed.preprocessing_check.labels`).
"""

from __future__ import annotations

import math
import pathlib
from typing import TYPE_CHECKING, Any, Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from aimed.components import AugmentorBase, DataLoaderBase, PreprocessorBase
from aimed.config import ConfigStruct
from aimed.data import (
    SplitIds,
    augmentor_for,
    batched_split,
    eval_split,
    rows_in,
    split_batch,
    take,
)
from aimed.pipeline import SPLITS
from aimed.preprocessing_check.labels import LabelCheck, sparse_classes
from aimed.preprocessing_check.shapes import (
    fits,
    model_signature,
    per_output_weight_problems,
    shape_of,
    structured,
    weight_problem,
)

if TYPE_CHECKING:
    import keras

BATCHES_CHECKED = 3


class FirstBatch(NamedTuple):
    """A split's first batch, kept for the sample grid."""

    x: Any
    y: Any


class CheckResult(NamedTuple):
    """What checking every split produced."""

    report: Dict[str, Any]  # the content of report.json
    problems: List[str]  # every split's problems, in split order
    first_batches: Dict[str, Optional[FirstBatch]]


def check_batches(split: str, batches: Any, n: int, n_iter: int, batch_size: int, model: "keras.Model",
                  ids: Optional[SplitIds] = None,
                  labels_csv: Optional[pathlib.Path] = None) -> Tuple[Dict[str, Any], Optional[FirstBatch]]:
    """Check a split's batches against the model; return the split's report and its first ``(x, y)``.

    The first ``BATCHES_CHECKED`` batches are checked in full; with sparse class labels, the
    labels of all ``n_iter`` batches are checked too. ``ids``: the split's ids carried beside the
    batches (evaluation's reading), to name a point by its id. The first batch is kept for the
    sample grid: pulling it again would fill a loader's shuffle buffer a second time.
    """
    problems: List[str] = []
    expected_iter = math.ceil(n / batch_size)
    if n_iter != expected_iter:
        problems.append(
            f"{split}: batchify returned n_iter={n_iter}, but n={n} points in batches of {batch_size} need {expected_iter}"
        )
    input_shape = list(model.inputs[0].shape)
    output_shape = list(model.outputs[0].shape)
    one_input, one_output = len(model.inputs) == 1, len(model.outputs) == 1
    output_shapes = {output["name"]: output["shape"] for output in model_signature(model)["outputs"]}
    seen = []
    first = None
    labels: Optional[LabelCheck] = None
    rows_read = 0
    for index, batch in enumerate(take(batches, n_iter)):
        x, y, w = split_batch(batch)
        size = rows_in(x)
        rows = min(size, n - rows_read)
        batch_ids = ids.take(rows, w) if ids is not None else None
        if index == 0 and one_output:
            classes = sparse_classes(y, output_shape)
            labels = LabelCheck(classes) if classes else None
        if labels is not None and not structured(y):
            labels.add(y, rows, rows_read, batch_ids)
        rows_read += rows
        if index >= BATCHES_CHECKED:
            continue
        if first is None:
            first = FirstBatch(x, y)
        where = f"{split} batch {index}"
        if not 0 < size <= batch_size:
            problems.append(f"{where}: has {size} rows, expected 1 to batch_size={batch_size}")
        numeric = True
        if one_input and not structured(x):
            if not fits(shape_of(x), input_shape):
                problems.append(f"{where}: x has shape {shape_of(x)}, the model input expects {input_shape}")
            numeric = np.issubdtype(np.asarray(x).dtype, np.number)
            if not numeric:
                problems.append(f"{where}: x has dtype {np.asarray(x).dtype}, not numeric")
            elif not np.all(np.isfinite(x)):
                problems.append(f"{where}: x has NaN or inf values")
        if rows_in(y) != size:
            problems.append(f"{where}: y has {rows_in(y)} rows but x has {size}")
        elif one_output and not structured(y):
            y_shape = shape_of(y)
            if not (fits(y_shape, output_shape) or fits(y_shape + [output_shape[-1]], output_shape)
                    or fits(y_shape, output_shape[:-1] + [1])):
                problems.append(
                    f"{where}: y has shape {y_shape}; the model output is {output_shape}, so y must be "
                    f"{output_shape} (dense) or {output_shape[:-1]} (sparse class indices)"
                )
        if ids is not None:
            w = None  # the test split is read as evaluation reads it: unweighted, its ids set aside
        if w is not None and one_output:
            problem = weight_problem(where, w, size, output_shape)
            if problem:
                problems.append(problem)
        elif w is not None:
            problems += per_output_weight_problems(where, w, size, output_shapes)
        if not problems:
            try:
                model.test_on_batch(x, y, sample_weight=w)
            except Exception as exc:  # Keras raises many error types for shape mismatches
                first_line = str(exc).splitlines()[0]
                problems.append(f"{where}: the compiled model cannot evaluate it: {type(exc).__name__}: {first_line}")
        seen.append(_batch_summary(x, y, w, numeric))
    if labels is not None:
        problem = labels.problem(split, labels_csv)
        if problem:
            problems.append(problem)
    return {"n": n, "n_iter": n_iter, "batches": seen, "problems": problems}, first


def _batch_summary(x: Any, y: Any, w: Any, numeric: bool) -> Dict[str, Any]:
    def describe(value: Any) -> Dict[str, Any]:
        if isinstance(value, dict):
            return {key: describe(v) for key, v in value.items()}
        return {"shape": shape_of(value), "dtype": str(np.asarray(value).dtype)}

    x_summary = describe(x)
    if not structured(x):
        x_summary.update(min=float(np.min(x)) if numeric and np.size(x) else None,
                         max=float(np.max(x)) if numeric and np.size(x) else None)
    return {"x": x_summary, "y": describe(y), "weight": None if w is None else describe(w)}


def check_splits(model: "keras.Model", loader: DataLoaderBase, augmentor: Optional[AugmentorBase],
                 preprocessor: PreprocessorBase, config: ConfigStruct, data_dir: pathlib.Path) -> CheckResult:
    """Check the batches of every split; ``data_dir``'s tutorial-layout ``labels.csv`` files name wrong labels."""
    report: Dict[str, Any] = {"model": model_signature(model), "batch_size": config.batch_size, "splits": {}}
    first_batches: Dict[str, Optional[FirstBatch]] = {}
    for split in SPLITS:
        labels_csv = data_dir / split / "labels.csv"
        labels_csv = labels_csv if labels_csv.is_file() else None
        if split == "test":
            prepared = eval_split(loader, preprocessor, split)
            batches, n, n_iter, ids = prepared.batches, prepared.n, prepared.n_iter, prepared.ids
        else:
            augmented = augmentor_for(config, augmentor, split)
            (batches, n, n_iter), ids = batched_split(loader, augmented, preprocessor, split), None
        report["splits"][split], first_batches[split] = check_batches(split, batches, n, n_iter, config.batch_size,
                                                                      model, ids, labels_csv)
    problems = [p for s in report["splits"].values() for p in s["problems"]]
    report["ok"] = not problems
    return CheckResult(report, problems, first_batches)
