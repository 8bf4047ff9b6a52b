"""One streaming pass over a split, writing a per-datapoint report and returning its summary and plot data.

The split is read in evaluation batches of ``EvalSettings.batch_size`` rows, whatever the
preprocessor's batch size (:mod:`aimed.evaluation.batches`). For each batch one compiled call
predicts and updates the compiled loss and metrics from the same predictions
(:mod:`aimed.evaluation.step`), then the eval functions run and the batch's rows are written to
the report at once, so there is one pass and memory is bounded by the batch size (plus one
float per row and eval function, for the percentiles, and the ``worst_k`` samples for their
grid). Reading and predicting run in a worker thread one batch ahead of the eval functions and
the report, so the two overlap (:mod:`aimed.evaluation.ahead`). Exactly ``n`` rows are written:
rows that wrap around past the end of the split are cut.

Report columns: ``data_id``; ``row`` (the position in the split); ``y_true`` and ``y_pred`` (a scalar as is, a vector of up to 32
values as a JSON list, a larger array as its mean); for classifiers ``pred_class`` and
``confidence``; one column per eval function; the DataLoader's metadata columns.
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import TYPE_CHECKING, Any, Dict, List, Optional

import numpy as np

from aimed.components import DataLoaderBase, EvaluatorBase, PreprocessorBase
from aimed.data import eval_split, rows_in
from aimed.errors import StageFailed
from aimed.evaluation.ahead import one_ahead
from aimed.evaluation.batches import eval_batches
from aimed.evaluation.classification import (
    ClassifiedBatch,
    classify,
    confusion_counts,
    is_classifier,
    outputs_are_logits,
    softmax,
)
from aimed.evaluation.funcs import eval_functions
from aimed.evaluation.metadata import Metadata
from aimed.evaluation.progress import Progress
from aimed.evaluation.report import ReportWriter, cells, float_cells
from aimed.evaluation.step import eval_step, predicted_batches
from aimed.evaluation.summary import SliceAccumulator, classification_summary, describe
from aimed.evaluation.worst import WorstSample, WorstSamples, worst_direction

if TYPE_CHECKING:
    import keras

#: Rows per evaluation batch: large enough that per-call costs vanish, small enough for any model's memory.
EVAL_BATCH_SIZE = 1024


@dataclasses.dataclass
class EvalSettings:
    """The ``evaluation:`` config options that shape one split's evaluation, and its batch size."""

    report_format: str = "csv"
    slice_by: tuple = ()
    worst_k: int = 16
    worst_by: Optional[str] = None
    worst_direction: Optional[str] = None
    batch_size: int = EVAL_BATCH_SIZE


@dataclasses.dataclass
class SplitResult:
    """What one pass over a split produced, beyond the report file."""

    summary: Dict[str, Any]
    values: Dict[str, np.ndarray]
    confusion: Optional[np.ndarray]
    worst: List[WorstSample]
    worst_by: Optional[str] = None


def _report_batch(writer: ReportWriter, slices: Dict[str, SliceAccumulator], metadata: Optional[Metadata],
                  batch_ids: List[str], y_true: np.ndarray, y_pred: np.ndarray,
                  classified: Optional[ClassifiedBatch], batch_values: Dict[str, np.ndarray], first_row: int,
                  logits: bool = False) -> None:
    """Format one batch's report columns, count them into the slices and write them.

    ``first_row``: the batch's first row in the split; the ``row`` column tells apart points that
    share an id. ``logits``: the classifier's scores are logits, so ``confidence`` is the top
    softmax probability.
    """
    columns: Dict[str, List[str]] = {"data_id": batch_ids,
                                     "row": list(map(str, range(first_row, first_row + len(batch_ids))))}
    if classified is not None:
        columns["y_true"] = list(map(str, classified.labels.tolist()))
        columns["y_pred"] = cells(y_pred)
        columns["pred_class"] = list(map(str, classified.predicted.tolist()))
        columns["confidence"] = float_cells(np.max(softmax(y_pred) if logits else y_pred, axis=1))
    else:
        columns["y_true"] = cells(y_true)
        columns["y_pred"] = cells(y_pred)
    for name, v in batch_values.items():
        columns[name] = float_cells(v)
    if metadata is not None:
        columns.update(metadata.columns(batch_ids))
    for column, accumulator in slices.items():
        if column not in columns:
            raise StageFailed(
                f"evaluation.slice_by names '{column}', which is not a report column ({', '.join(columns)})."
            )
        accumulator.add(columns[column], batch_values, None if classified is None else classified.correct)
    writer.write(columns)


def evaluate_split(model: "keras.Model", loader: DataLoaderBase, preprocessor: PreprocessorBase,
                   evaluator: EvaluatorBase, split: str, report_path: pathlib.Path,
                   settings: Optional[EvalSettings] = None) -> SplitResult:
    """Write the report of one split to ``report_path`` and return its summary and plot data (default settings: csv)."""
    settings = settings or EvalSettings()
    prepared = eval_split(loader, preprocessor, split)
    n, n_iter = prepared.n, prepared.n_iter
    funcs = eval_functions(evaluator)
    worst_by = settings.worst_by or next(iter(funcs), None)
    if worst_by is not None and worst_by not in funcs:
        raise StageFailed(f"evaluation.worst_by is '{worst_by}', which is not an eval function ({', '.join(funcs)}).")
    metadata_frame = loader.get_metadata(split)
    metadata = None if metadata_frame is None else Metadata(metadata_frame, split)
    values: Dict[str, List[np.ndarray]] = {name: [] for name in funcs}
    slices = {column: SliceAccumulator(column) for column in settings.slice_by}
    direction, direction_why = worst_direction(settings.worst_direction, funcs.get(worst_by), worst_by)
    worst = WorstSamples(settings.worst_k, direction)
    step = eval_step(model)
    model.reset_metrics()
    loss_sum, confusion, rows = 0.0, None, 0
    classifier: Optional[bool] = None  # decided on the first batch, so every batch has the same columns
    logits = False
    writer = ReportWriter(report_path, settings.report_format)
    progress = Progress(split, n)
    batches = one_ahead(predicted_batches(step, eval_batches(prepared.batches, n_iter, n, settings.batch_size),
                                          weighted=prepared.weighted))
    try:
        for batch in batches:
            x, y_true, y_pred = batch.x, batch.y_true, batch.y_pred
            keep = rows_in(x)
            batch_ids = prepared.ids.take(keep, batch.third)
            loss_sum += batch.loss * keep
            if classifier is None:
                classifier = is_classifier(y_pred, y_true)
                logits = bool(classifier) and outputs_are_logits(model, y_pred)
            classified = None
            if classifier:
                n_classes = y_pred.shape[1]
                classified = classify(y_true, y_pred)
                if confusion is None:
                    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
                confusion += confusion_counts(classified, n_classes)
            batch_values = {name: func(y_true, y_pred) for name, func in funcs.items()}
            for name, v in batch_values.items():
                values[name].append(v)
            if worst_by is not None and settings.worst_k:
                worst.add(batch_values[worst_by], rows, x, y_true if classified is None else classified.labels,
                          y_pred if classified is None else classified.predicted, batch_ids)
            _report_batch(writer, slices, metadata, batch_ids, y_true, y_pred, classified, batch_values, rows, logits)
            rows += keep
            progress.update(rows)
    finally:
        batches.close()
        writer.close()
    if rows != n:
        raise ValueError(f"the {split} split yielded {rows} data points in {n_iter} batches, but its loader reports n={n}")
    compiled = {k: float(v) for k, v in model.get_metrics_result().items() if k != "loss" and np.ndim(v) == 0}
    merged = {name: np.concatenate(v) if v else np.array([]) for name, v in values.items()}
    summary: Dict[str, Any] = {
        "split": split,
        "n": n,
        "metrics": {name: describe(v) for name, v in merged.items()},
        "model_metrics": {"loss": loss_sum / n if n else None, **compiled},
        # Which samples plots/worst.png shows, and what decided it.
        "worst_samples": {"by": worst_by, "worst": "lowest" if direction == "min" else "highest", "because": direction_why},
        # No mode yet: every batch had one sample, so every call was per sample.
        "eval_function_modes": {name: func.mode or "per_sample" for name, func in funcs.items()},
    }
    if confusion is not None:
        summary["classification"] = classification_summary(confusion)
        # Text, so outside the sections that DVC reads as metrics.
        summary["confidence"] = ("the top softmax probability of the model's outputs, which are logits "
                                 "(y_pred holds the logits)" if logits else
                                 "the top value of the model's outputs, which are probabilities")
    if slices:
        summary["slices"] = {column: acc.result() for column, acc in slices.items()}
    return SplitResult(summary, merged, confusion, worst.result(), worst_by)
