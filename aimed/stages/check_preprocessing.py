"""check-preprocessing: pull batches through augmentor and preprocessor and check them against the model.

The training and validation splits are read as training reads them, the test split as
evaluation reads it (ids set aside, see :func:`aimed.data.eval_split`). For each split it
checks that x, y and weight batches have shapes and dtypes the compiled model accepts, that
every value is finite, that ``n_iter`` batches of ``batch_size`` cover the ``n`` points exactly
once, and that one ``test_on_batch`` runs. For a model with one class-score output and sparse
labels, every label of every split is checked against the number of classes: training would
otherwise stop on a TensorFlow graph error at the first batch holding one.
"""

from __future__ import annotations

import math
import pathlib
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from aimed._io import atomic_write_json, staged_dir
from aimed._plots import save_image_grid
from aimed.data import SPLITS, SplitIds, augmentor_for, batched_split, eval_split, split_batch, take
from aimed.errors import StageFailed
from aimed.evaluation.batches import rows_in
from aimed.run import RunContext

BATCHES_CHECKED = 3
SAMPLES_SHOWN = 16
#: Out-of-range labels named in a problem, at most.
LABELS_NAMED = 10


def _shape(value: Any) -> List[Any]:
    return list(np.shape(value))


def _model_signature(model: Any) -> Dict[str, Any]:
    return {
        "inputs": [{"name": t.name, "shape": list(t.shape), "dtype": str(t.dtype)} for t in model.inputs],
        "outputs": [{"name": t.name, "shape": list(t.shape), "dtype": str(t.dtype)} for t in model.outputs],
    }


def _fits(actual: List[Any], expected: List[Any]) -> bool:
    return len(actual) == len(expected) and all(e is None or a == e for a, e in zip(actual, expected))


def _structured(value: Any) -> bool:
    """A dict, list or tuple of arrays: the data of a multi-input or multi-output model."""
    return isinstance(value, (dict, list, tuple))


def weight_shapes(size: int, output_shape: List[Any]) -> List[List[Any]]:
    """The sample-weight shapes Keras 3 takes for a batch of ``size`` rows of one output.

    Per sample, ``[B]``; for an output with more axes than ``[B, classes]`` (a segmentation map),
    one weight per position of the loss, ``[B, H, W]`` or ``[B, H, W, 1]``, and only those: Keras 3
    does not broadcast a per-sample weight over a per-pixel loss.
    """
    if len(output_shape) > 2:
        per_position = [size] + list(output_shape[1:-1])
        return [per_position, per_position + [1]]
    return [[size]]


def _weight_problem(where: str, w: Any, size: int, output_shape: List[Any]) -> Optional[str]:
    fitting = weight_shapes(size, output_shape)
    if any(_fits(_shape(w), shape) for shape in fitting):
        if not np.all(np.isfinite(np.asarray(w, dtype=np.float64))):
            return f"{where}: weight has NaN or inf values"
        return None
    return (f"{where}: weight has shape {_shape(w)}; for the model output {output_shape} a weight must have "
            f"shape {' or '.join(map(str, fitting))}")


def _sparse_classes(y: Any, output_shape: List[Any]) -> Optional[int]:
    """The number of classes if ``y`` holds class indices for a class-score output, else ``None``."""
    if _structured(y) or len(output_shape) < 2 or output_shape[-1] is None or output_shape[-1] < 2:
        return None
    values = np.asarray(y)
    if not np.issubdtype(values.dtype, np.number):
        return None
    sparse = _fits(_shape(values), output_shape[:-1]) or _fits(_shape(values), output_shape[:-1] + [1])
    return int(output_shape[-1]) if sparse else None


class _LabelCheck:
    """Sparse labels outside ``[0, classes)`` over a whole split, with where the first few were."""

    def __init__(self, classes: int) -> None:
        self.classes = classes
        self.bad: Dict[float, int] = {}
        self.where: List[str] = []

    def add(self, y: Any, rows: int, first_row: int, ids: Optional[List[str]]) -> None:
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


def check_batches(split: str, batches: Any, n: int, n_iter: int, batch_size: int, model: Any,
                  ids: Optional[SplitIds] = None,
                  labels_csv: Optional[pathlib.Path] = None) -> Tuple[Dict[str, Any], Optional[tuple]]:
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
    seen = []
    first = None
    labels: Optional[_LabelCheck] = None
    rows_read = 0
    for index, batch in enumerate(take(batches, n_iter)):
        x, y, w = split_batch(batch)
        size = rows_in(x)
        rows = min(size, n - rows_read)
        batch_ids = ids.take(rows, w) if ids is not None else None
        if index == 0 and one_output:
            classes = _sparse_classes(y, output_shape)
            labels = _LabelCheck(classes) if classes else None
        if labels is not None and not _structured(y):
            labels.add(y, rows, rows_read, batch_ids)
        rows_read += rows
        if index >= BATCHES_CHECKED:
            continue
        if first is None:
            first = (x, y)
        where = f"{split} batch {index}"
        if not 0 < size <= batch_size:
            problems.append(f"{where}: has {size} rows, expected 1 to batch_size={batch_size}")
        numeric = True
        if one_input and not _structured(x):
            if not _fits(_shape(x), input_shape):
                problems.append(f"{where}: x has shape {_shape(x)}, the model input expects {input_shape}")
            numeric = np.issubdtype(np.asarray(x).dtype, np.number)
            if not numeric:
                problems.append(f"{where}: x has dtype {np.asarray(x).dtype}, not numeric")
            elif not np.all(np.isfinite(x)):
                problems.append(f"{where}: x has NaN or inf values")
        if rows_in(y) != size:
            problems.append(f"{where}: y has {rows_in(y)} rows but x has {size}")
        elif one_output and not _structured(y):
            y_shape = _shape(y)
            if not (_fits(y_shape, output_shape) or _fits(y_shape + [output_shape[-1]], output_shape)
                    or _fits(y_shape, output_shape[:-1] + [1])):
                problems.append(
                    f"{where}: y has shape {y_shape}; the model output is {output_shape}, so y must be "
                    f"{output_shape} (dense) or {output_shape[:-1]} (sparse class indices)"
                )
        if ids is not None:
            w = None  # the test split is read as evaluation reads it: unweighted, its ids set aside
        if w is not None and one_output:
            problem = _weight_problem(where, w, size, output_shape)
            if problem:
                problems.append(problem)
        if not problems:
            try:
                model.test_on_batch(x, y, sample_weight=w)
            except Exception as exc:  # Keras raises many error types for shape mismatches
                problems.append(f"{where}: the compiled model cannot evaluate it: {type(exc).__name__}: {str(exc).splitlines()[0]}")
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
        return {"shape": _shape(value), "dtype": str(np.asarray(value).dtype)}

    x_summary = describe(x)
    if not _structured(x):
        x_summary.update(min=float(np.min(x)) if numeric and np.size(x) else None,
                         max=float(np.max(x)) if numeric and np.size(x) else None)
    return {"x": x_summary, "y": describe(y), "weight": None if w is None else describe(w)}


def _sample_images(batch: Optional[tuple]) -> tuple:
    images, titles = [], []
    if batch is not None and not _structured(batch[0]):
        x, y = batch
        for index, xi in enumerate(list(x)[:SAMPLES_SHOWN]):
            yi = {k: np.asarray(v)[index] for k, v in y.items()} if isinstance(y, dict) else np.asarray(y)[index]
            images.append(xi)
            titles.append(f"y={_label_title(yi)}")
    return images, titles


def _label_title(label: Any) -> str:
    if isinstance(label, dict):
        return ",".join(f"{k}:{_label_title(v)}" for k, v in label.items())
    value = np.asarray(label)
    if value.size <= 3:
        return str(value.tolist())
    return f"mean {value.mean():.2g}" if value.ndim > 1 else str(int(np.argmax(value)))


def require_validated_data(ctx: RunContext) -> None:
    """Refuse to check batches of a dataset that validate-data has not passed (it records a fingerprint only then)."""
    from aimed.provenance import FINGERPRINT_FILE

    folder = ctx.stage_dir("validate-data")
    if (folder / FINGERPRINT_FILE).is_file():
        return
    report = folder / "report.json"
    state = (f"failed (its report {report} lists the problems)" if report.is_file()
             else "not run for this run")
    raise StageFailed(
        f"validate-data has {state}, so the preprocessing of run '{ctx.name}' is not checked on that data. "
        f"Run `aimed validate-data {ctx.name}` until it passes, then check the preprocessing."
    )


def run(ctx: RunContext) -> Dict[str, Any]:
    """Check every split; write ``report.json`` and ``samples.png``; fail on any problem."""
    require_validated_data(ctx)
    config = ctx.config
    model = ctx.model_builder().get_compiled_model()
    loader, augmentor, preprocessor = ctx.data_loader(), ctx.augmentor(), ctx.preprocessor()
    report: Dict[str, Any] = {"model": _model_signature(model), "batch_size": config.batch_size, "splits": {}}
    first_batches = {}
    for split in SPLITS:
        labels_csv = ctx.data_dir / split / "labels.csv"
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
    with staged_dir(ctx.stage_dir("check-preprocessing")) as out:
        atomic_write_json(out / "report.json", report)
        # Snakemake (keep-incomplete) records a failed job's outputs as finished; without the
        # fingerprint, one of the declared outputs, the next run checks again instead of training.
        if not problems:
            ctx.record_fingerprint("check-preprocessing", out)
        images, titles = _sample_images(first_batches["train"])
        save_image_grid(out / "samples.png", images, titles, config.input_height, config.input_width)
    if problems:
        raise StageFailed(
            f"preprocessing of run '{ctx.name}' does not fit the model built by {config.model_builder_class}: "
            + "; ".join(problems)
            + f". Fix {config.preprocessor_class} or the model; the report is "
            f"{ctx.stage_dir('check-preprocessing') / 'report.json'}."
        )
    return report
