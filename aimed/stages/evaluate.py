"""evaluate: one streaming pass over a split, writing a per-datapoint report, a summary and plots.

The split is read in evaluation batches of ``EvalSettings.batch_size`` rows, whatever the
preprocessor's batch size (:mod:`aimed.evaluation.batches`). For each batch one compiled call
predicts and updates the compiled loss and metrics from the same predictions
(:mod:`aimed.evaluation.step`), then the eval functions run and the batch's rows are written to
the report at once, so there is one pass and memory is bounded by the batch size (plus one
float per row and eval function, for the percentiles, and the ``worst_k`` samples for their
grid). Reading and predicting run in a worker thread one batch ahead of the eval functions and
the report, so the two overlap (:func:`_one_ahead`). Exactly ``n`` rows are written: rows that
wrap around past the end of the split are cut.

Report columns: ``data_id``; ``row`` (the position in the split); ``y_true`` and ``y_pred`` (a scalar as is, a vector of up to 32
values as a JSON list, a larger array as its mean); for classifiers ``pred_class`` and
``confidence``; one column per eval function; the DataLoader's metadata columns.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import heapq
import json
import logging
import os
import sys
import time
from typing import Any, Dict, Generator, Iterator, List, Optional, Tuple

import numpy as np

from aimed._io import atomic_write_json, staged_dir
from aimed.data import decode_ids, eval_split
from aimed.errors import StageFailed
from aimed.model_files import rebuilt_model
from aimed.evaluation.batches import EvalBatch, eval_batches, row_of, rows_in, structure_map
from aimed.evaluation.funcs import eval_functions
from aimed.evaluation.report import ReportWriter, cell, cells, float_cells
from aimed.evaluation.step import EvalStep, eval_step
from aimed.evaluation.summary import SliceAccumulator, check_thresholds, classification_summary, describe
from aimed.pipeline import report_file_name
from aimed.run import RunContext

log = logging.getLogger(__name__)

#: Set to 1 to report a failed quality gate without failing (as ``--no-gate``), e.g. under Snakemake.
NO_GATE_ENV = "AIMED_NO_GATE"
PROGRESS_EVERY_SECONDS = 10.0
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


def is_classifier(y_pred: np.ndarray, y_true: np.ndarray) -> bool:
    """A score-per-class output, with sparse labels (class indices) or one-hot (or soft) label rows.

    The label values decide, not the shapes alone: a regression with as many targets as outputs
    has the shapes of one-hot classification.
    """
    if not isinstance(y_pred, np.ndarray) or not isinstance(y_true, np.ndarray):
        return False  # several outputs: no one class per sample
    if y_pred.ndim != 2 or y_pred.shape[1] < 2 or not np.issubdtype(y_true.dtype, np.number):
        return False
    n_classes = y_pred.shape[1]
    if y_true.ndim == 1 or (y_true.ndim == 2 and y_true.shape[1] == 1):
        return bool(np.all((y_true == np.round(y_true)) & (y_true >= 0) & (y_true < n_classes)))
    if y_true.ndim == 2 and y_true.shape[1] == n_classes:
        return bool(np.all(y_true >= 0) and np.allclose(y_true.sum(axis=1), 1.0, atol=1e-6))
    return False


def outputs_are_logits(model: Any, y_pred: np.ndarray) -> bool:
    """Whether a classifier's scores are logits rather than probabilities.

    The compiled loss says so when it is a Keras loss built with ``from_logits=True``; otherwise
    the scores do: softmax rows lie in [0, 1] and sum to 1, which logits practically never all do.
    """
    losses = model.loss.values() if isinstance(getattr(model, "loss", None), dict) else [getattr(model, "loss", None)]
    if any(getattr(loss, "from_logits", False) for loss in losses):
        return True
    with np.errstate(invalid="ignore"):
        probabilities = (np.all((y_pred >= 0) & (y_pred <= 1))
                         and np.allclose(y_pred.sum(axis=1), 1.0, atol=1e-3))
    return not probabilities


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - np.max(logits, axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def class_labels(y_true: np.ndarray, n_classes: int) -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim == 2 and y.shape[1] == n_classes:
        return np.argmax(y, axis=1)
    return y.reshape(-1).astype(np.int64)


class _Metadata:
    """The DataLoader's metadata columns, looked up for a batch's ids at once ("" for an unknown id)."""

    def __init__(self, frame: Any, split: str) -> None:
        # Report ids are strings; an index of numbers or bytes would otherwise match no row.
        self.frame = frame.set_axis(decode_ids(frame.index), axis=0)
        if not self.frame.index.is_unique:
            duplicated = self.frame.index[self.frame.index.duplicated()].unique().tolist()[:5]
            raise StageFailed(f"get_metadata('{split}') has more than one row for the data ids {duplicated}.")
        # Numpy scalars, not Python ones, so a float32 column reads as it prints (0.1, not 0.10000000149011612).
        self.values = {column: self.frame[column].to_numpy() if isinstance(self.frame[column].dtype, np.dtype)
                       else self.frame[column].array for column in self.frame.columns}

    def columns(self, ids: List[str]) -> Dict[str, List[str]]:
        positions = self.frame.index.get_indexer(ids)
        known = positions >= 0
        out = {}
        for column, values in self.values.items():
            found = iter(values[positions[known]])
            out[column] = [str(next(found)) if k else "" for k in known.tolist()]
        return out


@dataclasses.dataclass(frozen=True)
class WorstSample:
    """One of the worst samples of a split, for the worst-samples grid."""

    value: float  # its worst_by value
    row: int
    x: Any
    y_true: str  # the report's cells
    y_pred: str
    data_id: str
    #: ``(true mask, predicted mask)`` of a segmentation model, shown beside the image.
    masks: Optional[Tuple[np.ndarray, np.ndarray]] = None


def worst_direction(setting: Optional[str], func: Any) -> str:
    """``"min"`` if the lowest values are the worst, ``"max"`` if the highest are.

    The ``evaluation.worst_direction`` setting, else the opposite of the function's declared
    ``direction`` (what is better, as the functions of :mod:`aimed.metrics` declare), else
    ``"max"`` (a loss: the highest is the worst).
    """
    if setting:
        return setting
    better = getattr(getattr(func, "func", func), "direction", None)
    return {"max": "min", "min": "max"}.get(better, "max")


def _is_segmentation(y_true: Any, y_pred: Any) -> bool:
    """Outputs and labels with spatial axes: ``[B, H, W(, C)]`` masks."""
    return (isinstance(y_pred, np.ndarray) and isinstance(y_true, np.ndarray) and y_pred.ndim >= 3
            and y_true.shape[1:3] == y_pred.shape[1:3])


class _Worst:
    """The ``k`` worst samples: the lowest or highest values (NaN and inf count as worst; ties: the later sample)."""

    def __init__(self, k: int, direction: str = "max") -> None:
        self.k = k
        self.sign = 1.0 if direction == "max" else -1.0
        self.heap: List[tuple] = []

    def add(self, values: np.ndarray, first_row: int, x: Any, y_true: Any, y_pred: Any, ids: List[str]) -> None:
        """Consider one batch; ``y_true`` and ``y_pred`` are what the report shows (classes, for a classifier)."""
        ranks = self.sign * values
        ranks = np.where(np.isfinite(ranks), ranks, np.inf)
        segmentation = _is_segmentation(y_true, y_pred)
        # Only the batch's own worst k can enter the heap: the rest need no record and no image copy.
        for i in np.lexsort((np.arange(len(ranks)), ranks))[-self.k:].tolist():
            key = (float(ranks[i]), first_row + i)
            if len(self.heap) < self.k or key > self.heap[0][:2]:
                sample = WorstSample(float(values[i]), first_row + i, structure_map(np.array, row_of(x, i)),
                                     cell(row_of(y_true, i)), cell(row_of(y_pred, i)), ids[i],
                                     (np.array(y_true[i]), np.array(y_pred[i])) if segmentation else None)
                (heapq.heappush if len(self.heap) < self.k else heapq.heapreplace)(self.heap, (*key, sample))

    def result(self) -> List[WorstSample]:
        return [item[2] for item in sorted(self.heap, key=lambda item: item[:2], reverse=True)]


class _Progress:
    """A progress bar with samples/s on a TTY, a line every few seconds otherwise."""

    def __init__(self, split: str, n: int) -> None:
        self.split, self.n = split, n
        self.tty = sys.stderr.isatty()
        self.start = self.last = time.monotonic()

    def update(self, done: int) -> None:
        now = time.monotonic()
        rate = done / max(now - self.start, 1e-9)
        if self.tty:
            filled = int(30 * done / self.n)
            sys.stderr.write(f"\r{self.split}: [{'=' * filled}{' ' * (30 - filled)}] {done}/{self.n} {rate:,.0f} samples/s")
            if done >= self.n:
                sys.stderr.write("\n")
        elif now - self.last >= PROGRESS_EVERY_SECONDS or done >= self.n:
            log.info("%s: %d/%d samples, %.0f samples/s", self.split, done, self.n, rate)
            self.last = now


#: What ``next`` returns in ``_one_ahead``'s worker once the source is exhausted.
_END = object()


def _predicted(step: EvalStep, batches: Iterator[EvalBatch], weighted: bool) -> Iterator[tuple]:
    """``(x, y_true, third, y_pred, loss)`` of each batch: one compiled call, its outputs fetched as numpy.

    ``weighted``: the third element is the sample weight (the validation split), not the unit weight
    standing in for the test split's ids.
    """
    for x, y_true, third in batches:
        weights = third.astype(np.float32) if weighted and third is not None else None
        y_pred, batch_loss = step(x, y_true, weights)
        yield x, y_true, third, structure_map(np.asarray, y_pred), float(batch_loss)


def _one_ahead(items: Iterator[Any]) -> Generator[Any, None, None]:
    """The items of ``items``, each made in a worker thread while the caller handles the one before.

    tf.data and the compiled step run in C++ without the GIL, so the next batch is read and
    predicted while this one goes through the eval functions and into the report (Python).
    Closing the generator waits for the one item under way, so no thread outlives the pass.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="aimed-evaluate") as worker:
        pending = worker.submit(next, items, _END)
        while True:
            item = pending.result()
            if item is _END:
                return
            pending = worker.submit(next, items, _END)
            yield item


def _report_batch(writer: ReportWriter, slices: Dict[str, SliceAccumulator], metadata: Optional[_Metadata],
                  batch_ids: List[str], y_true: np.ndarray, y_pred: np.ndarray, classes: Optional[np.ndarray],
                  predicted: Optional[np.ndarray], correct: Optional[np.ndarray],
                  batch_values: Dict[str, np.ndarray], first_row: int, logits: bool = False) -> None:
    """Format one batch's report columns, count them into the slices and write them.

    ``first_row``: the batch's first row in the split; the ``row`` column tells apart points that
    share an id. ``logits``: the classifier's scores are logits, so ``confidence`` is the top
    softmax probability.
    """
    columns: Dict[str, List[str]] = {"data_id": batch_ids,
                                     "row": list(map(str, range(first_row, first_row + len(batch_ids))))}
    if classes is not None:
        columns["y_true"] = list(map(str, classes.tolist()))
        columns["y_pred"] = cells(y_pred)
        columns["pred_class"] = list(map(str, predicted.tolist()))
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
        accumulator.add(columns[column], batch_values, correct)
    writer.write(columns)


def evaluate_split(model: Any, loader: Any, preprocessor: Any, evaluator: Any, split: str, report_path,
                   settings: EvalSettings = EvalSettings()) -> SplitResult:
    """Write the report of one split to ``report_path`` and return its summary and plot data."""
    prepared = eval_split(loader, preprocessor, split)
    n, n_iter = prepared.n, prepared.n_iter
    funcs = eval_functions(evaluator)
    worst_by = settings.worst_by or next(iter(funcs), None)
    if worst_by is not None and worst_by not in funcs:
        raise StageFailed(f"evaluation.worst_by is '{worst_by}', which is not an eval function ({', '.join(funcs)}).")
    metadata_frame = loader.get_metadata(split)
    metadata = None if metadata_frame is None else _Metadata(metadata_frame, split)
    values: Dict[str, List[np.ndarray]] = {name: [] for name in funcs}
    slices = {column: SliceAccumulator(column) for column in settings.slice_by}
    worst = _Worst(settings.worst_k, worst_direction(settings.worst_direction, funcs.get(worst_by)))
    step = eval_step(model)
    model.reset_metrics()
    loss_sum, confusion, rows = 0.0, None, 0
    classifier: Optional[bool] = None  # decided on the first batch, so every batch has the same columns
    logits = False
    writer = ReportWriter(report_path, settings.report_format)
    progress = _Progress(split, n)
    predicted_batches = _one_ahead(_predicted(step, eval_batches(prepared.batches, n_iter, n, settings.batch_size),
                                              weighted=prepared.weighted))
    try:
        for x, y_true, third, y_pred, batch_loss in predicted_batches:
            keep = rows_in(x)
            batch_ids = prepared.ids.take(keep, third)
            loss_sum += batch_loss * keep
            if classifier is None:
                classifier = is_classifier(y_pred, y_true)
                logits = bool(classifier) and outputs_are_logits(model, y_pred)
            classes = predicted = correct = None
            if classifier:
                n_classes = y_pred.shape[1]
                classes = class_labels(y_true, n_classes)
                predicted = np.argmax(y_pred, axis=1)
                correct = classes == predicted
                if confusion is None:
                    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
                confusion += np.bincount(classes * n_classes + predicted,
                                         minlength=n_classes * n_classes).reshape(n_classes, n_classes)
            batch_values = {name: func(y_true, y_pred) for name, func in funcs.items()}
            for name, v in batch_values.items():
                values[name].append(v)
            if worst_by is not None and settings.worst_k:
                worst.add(batch_values[worst_by], rows, x, y_true if classes is None else classes,
                          y_pred if predicted is None else predicted, batch_ids)
            _report_batch(writer, slices, metadata, batch_ids, y_true, y_pred, classes, predicted, correct,
                          batch_values, rows, logits)
            rows += keep
            progress.update(rows)
    finally:
        predicted_batches.close()
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


def _write_plots(out, result: SplitResult, split: str, height: int, width: int) -> None:
    from aimed._plots import save_confusion_matrix, save_histogram, save_image_grid

    plots = out / "plots"
    plots.mkdir()
    save_confusion_matrix(plots / "confusion_matrix.png", result.confusion, f"{split}: confusion matrix")
    for name, values in result.values.items():
        save_histogram(plots / f"hist_{_safe(name)}.png", values, f"{split}: {name}")
    images, titles = [], []
    segmentation = any(w.masks is not None for w in result.worst)
    for w in result.worst:
        if segmentation:  # image, true mask, predicted mask side by side
            images += [w.x, *w.masks]
            titles += [f"{w.data_id}\n{result.worst_by}={w.value:.3g}", "true mask", "predicted mask"]
        else:
            images.append(w.x)
            titles.append(f"{w.data_id}\ntrue {w.y_true} pred {w.y_pred}\n{result.worst_by}={w.value:.3g}")
    save_image_grid(plots / "worst.png", images, titles, height, width, columns=6 if segmentation else 8)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def run(ctx: RunContext, split: str, gate: bool = True) -> Dict[str, Any]:
    """Evaluate the run's exported model on ``split`` into ``results/<run>/evaluate/<split>``.

    On the validation split the ``evaluation.thresholds`` gate is checked: the outputs are
    written either way (with ``blessed``), then a failed gate raises unless ``gate`` is off.
    An evaluation that fails its gate is written without ``fingerprint.json``, the record of a
    completed stage, so it is never taken as up to date.
    """
    config = ctx.config
    evaluation = config.evaluation
    settings = EvalSettings(evaluation.report_format, tuple(evaluation.slice_by), evaluation.worst_k,
                            evaluation.worst_by, evaluation.worst_direction)
    enforce_gate = gate and os.environ.get(NO_GATE_ENV) != "1"
    model = rebuilt_model(ctx.model_builder(), ctx.stage_dir("export") / "model.keras")
    card = json.loads((ctx.stage_dir("export") / "model_card.json").read_text())
    with staged_dir(ctx.stage_dir("evaluate") / split) as out:
        result = evaluate_split(model, ctx.data_loader(), ctx.preprocessor(), ctx.evaluator(), split,
                                out / report_file_name(settings.report_format), settings)
        summary = result.summary
        if split == "validation":
            summary["gate"] = check_thresholds(summary, evaluation.thresholds.to_dict())
            summary["blessed"] = summary["gate"]["blessed"]
        # The export's card stays as exported (an upstream artifact); the evaluated card sits here.
        atomic_write_json(out / "model_card.json", {**card, "evaluation": {
            "split": split, "model_metrics": summary["model_metrics"],
            "accuracy": summary.get("classification", {}).get("accuracy"),
            "gate": summary.get("gate"), "blessed": summary.get("blessed")}})
        atomic_write_json(out / "confusion_matrix.json", {
            "confusion_matrix": None if result.confusion is None else result.confusion.tolist()})
        atomic_write_json(out / "summary.json", summary)
        _write_plots(out, result, split, config.input_height, config.input_width)
        # Snakemake (keep-incomplete) records a failed job's outputs as finished, so a complete set
        # of outputs would pass the gate on the next `snakemake`. Without the fingerprint, one of
        # the declared outputs, the job runs (and fails) again until it passes or the gate is off.
        if summary.get("blessed", True) or not enforce_gate:
            ctx.record_fingerprint("evaluate", out, split)
    _log_to_mlflow(ctx, split, summary)
    log.info("%s: %s", split, json.dumps(summary["model_metrics"]))
    gate_result = summary.get("gate")
    if gate_result and not gate_result["blessed"]:
        message = (f"run '{ctx.name}' failed its quality gate on the validation split: "
                   + "; ".join(gate_result["failures"])
                   + f". The evaluation is written with blessed: false to {ctx.stage_dir('evaluate') / split}. "
                   f"Improve the model or change evaluation.thresholds in {config.source}.")
        if enforce_gate:
            raise StageFailed(message)
        log.warning("%s (not failing: the gate is off)", message)
    return summary


def _flat_metrics(summary: Dict[str, Any], split: str) -> Dict[str, float]:
    flat = {f"{split}_{k}": v for k, v in summary["model_metrics"].items() if v is not None}
    for name, stats in summary["metrics"].items():
        flat.update({f"{split}_{_safe(name)}_{k}": v for k, v in stats.items() if v is not None and k != "n_nan"})
    if "classification" in summary:
        flat[f"{split}_accuracy"] = summary["classification"]["accuracy"]
    return flat


def _log_to_mlflow(ctx: RunContext, split: str, summary: Dict[str, Any]) -> None:
    """Summary metrics and the evaluation folder into the training run (replacing a rerun's values)."""
    from aimed.tracking import run_tracker

    train_summary = json.loads((ctx.stage_dir("train") / "summary.json").read_text())
    tracker = run_tracker(ctx.config, ctx.project_dir)
    tracker.attach(train_summary.get("mlflow_run_id"))
    tracker.log_metrics(_flat_metrics(summary, split))
    tracker.log_artifacts([ctx.stage_dir("evaluate") / split], "evaluation")
