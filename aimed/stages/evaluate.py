"""evaluate: one streaming pass over a split, writing a per-datapoint report, a summary and plots.

Predictions are made batch by batch; each batch's rows are written to the report at once, and
the compiled loss and metrics are updated from the same predictions, so there is one pass and
memory is bounded by the batch size (plus one float per row and eval function, for the
percentiles, and the ``worst_k`` samples for their grid). Exactly ``n`` rows are written:
batches that wrap around past the end of the split are cut.

Report columns: ``data_id``; ``y_true`` and ``y_pred`` (a scalar as is, a vector of up to 32
values as a JSON list, a larger array as its mean); for classifiers ``pred_class`` and
``confidence``; one column per eval function; the DataLoader's metadata columns.
"""

from __future__ import annotations

import dataclasses
import heapq
import json
import logging
import os
import sys
import time
from typing import Any, Dict, List, Optional

import numpy as np

from aimed._io import atomic_write_json, staged_dir
from aimed.data import batched_split, decode_ids, split_batch, take
from aimed.errors import StageFailed
from aimed.evaluation.funcs import eval_functions
from aimed.evaluation.report import REPORT_NAMES, ReportWriter
from aimed.evaluation.summary import SliceAccumulator, check_thresholds, classification_summary, describe
from aimed.run import RunContext

log = logging.getLogger(__name__)

#: Set to 1 to report a failed quality gate without failing (as ``--no-gate``), e.g. under Snakemake.
NO_GATE_ENV = "AIMED_NO_GATE"
PROGRESS_EVERY_SECONDS = 10.0


@dataclasses.dataclass
class EvalSettings:
    """The ``evaluation:`` config options that shape one split's evaluation."""

    report_format: str = "csv"
    slice_by: tuple = ()
    worst_k: int = 16
    worst_by: Optional[str] = None


@dataclasses.dataclass
class SplitResult:
    """What one pass over a split produced, beyond the report file."""

    summary: Dict[str, Any]
    values: Dict[str, np.ndarray]
    confusion: Optional[np.ndarray]
    worst: List[tuple]


def _fmt(value: float) -> str:
    return repr(float(value))


def is_classifier(y_pred: np.ndarray, y_true: np.ndarray) -> bool:
    """A score-per-class output, with sparse labels (class indices) or one-hot (or soft) label rows.

    The label values decide, not the shapes alone: a regression with as many targets as outputs
    has the shapes of one-hot classification.
    """
    if y_pred.ndim != 2 or y_pred.shape[1] < 2 or not np.issubdtype(y_true.dtype, np.number):
        return False
    n_classes = y_pred.shape[1]
    if y_true.ndim == 1 or (y_true.ndim == 2 and y_true.shape[1] == 1):
        return bool(np.all((y_true == np.round(y_true)) & (y_true >= 0) & (y_true < n_classes)))
    if y_true.ndim == 2 and y_true.shape[1] == n_classes:
        return bool(np.all(y_true >= 0) and np.allclose(y_true.sum(axis=1), 1.0, atol=1e-6))
    return False


def class_labels(y_true: np.ndarray, n_classes: int) -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim == 2 and y.shape[1] == n_classes:
        return np.argmax(y, axis=1)
    return y.reshape(-1).astype(np.int64)


def cell(row_value: Any) -> str:
    """A report cell for one sample's array: scalars as they are, small vectors as JSON, big arrays by their mean."""
    value = np.asarray(row_value)
    if value.size == 1:
        scalar = value.reshape(-1)[0]
        return str(scalar.item()) if np.issubdtype(value.dtype, np.integer) else _fmt(scalar)
    if value.ndim == 1 and value.size <= 32:
        return json.dumps([float(f"{v:.8g}") for v in value.tolist()])
    return _fmt(np.mean(value))


def split_ids(loader: Any, split: str, n: int) -> Optional[List[str]]:
    """Ids of the validation split, which yields weights rather than ids: from the loader, else positions."""
    if split != "validation":
        return None
    index = loader.get_validation_index()
    ids = decode_ids(index) if index is not None else [str(i) for i in range(n)]
    if len(ids) != n:
        raise ValueError(f"get_validation_index() returned {len(ids)} ids for a split of n={n}")
    return ids


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


def evaluate_split(model: Any, loader: Any, preprocessor: Any, evaluator: Any, split: str, report_path,
                   settings: EvalSettings = EvalSettings()) -> SplitResult:
    """Write the report of one split to ``report_path`` and return its summary and plot data."""
    batches, n, n_iter = batched_split(loader, None, preprocessor, split, for_eval=True)
    ids = split_ids(loader, split, n)
    funcs = eval_functions(evaluator)
    worst_by = settings.worst_by or next(iter(funcs), None)
    if worst_by is not None and worst_by not in funcs:
        raise StageFailed(f"evaluation.worst_by is '{worst_by}', which is not an eval function ({', '.join(funcs)}).")
    metadata = loader.get_metadata(split)
    if metadata is not None:
        # Report ids are strings; an index of numbers or bytes would otherwise match no row.
        metadata = metadata.set_axis(decode_ids(metadata.index), axis=0)
    values: Dict[str, List[np.ndarray]] = {name: [] for name in funcs}
    slices = {column: SliceAccumulator(column) for column in settings.slice_by}
    worst: List[tuple] = []
    model.reset_metrics()
    loss_sum, confusion, rows = 0.0, None, 0
    classifier: Optional[bool] = None  # decided on the first batch, so every batch has the same columns
    writer = ReportWriter(report_path, settings.report_format)
    progress = _Progress(split, n)
    try:
        for batch in take(batches, n_iter):
            if rows >= n:
                break
            x, y, third = split_batch(batch)
            keep = min(len(x), n - rows)
            x, y_true = x[:keep], np.asarray(y)[:keep]
            batch_ids = ids[rows:rows + keep] if ids is not None else decode_ids(third[:keep])
            weights = None if ids is None or third is None else np.asarray(third[:keep], dtype=np.float32)
            y_pred = np.asarray(model.predict_on_batch(x))
            loss_sum += float(model.compute_loss(x=x, y=y_true, y_pred=y_pred, sample_weight=weights,
                                                 training=False)) * keep
            model.compute_metrics(x, y_true, y_pred, sample_weight=weights)
            columns: Dict[str, List[str]] = {"data_id": batch_ids, "y_true": [cell(v) for v in y_true],
                                             "y_pred": [cell(v) for v in y_pred]}
            correct = None
            if classifier is None:
                classifier = is_classifier(y_pred, y_true)
            if classifier:
                classes = class_labels(y_true, y_pred.shape[1])
                predicted = np.argmax(y_pred, axis=1)
                correct = classes == predicted
                columns["y_true"] = [str(int(c)) for c in classes]
                columns["pred_class"] = [str(int(c)) for c in predicted]
                columns["confidence"] = [_fmt(c) for c in np.max(y_pred, axis=1)]
                if confusion is None:
                    confusion = np.zeros((y_pred.shape[1], y_pred.shape[1]), dtype=np.int64)
                np.add.at(confusion, (classes, predicted), 1)
            batch_values = {name: func(y_true, y_pred) for name, func in funcs.items()}
            for name, v in batch_values.items():
                values[name].append(v)
                columns[name] = [_fmt(x_) for x_ in v]
            if metadata is not None:
                for column in metadata.columns:
                    columns[column] = [str(metadata[column].get(i, "")) for i in batch_ids]
            for column, accumulator in slices.items():
                if column not in columns:
                    raise StageFailed(
                        f"evaluation.slice_by names '{column}', which is not a report column ({', '.join(columns)})."
                    )
                accumulator.add(columns[column], batch_values, correct)
            if worst_by is not None and settings.worst_k:
                for i, score in enumerate(batch_values[worst_by]):
                    item = (float(score) if np.isfinite(score) else float("inf"), rows + i, np.array(x[i]),
                            columns["y_true"][i], columns.get("pred_class", columns["y_pred"])[i], batch_ids[i])
                    (heapq.heappush if len(worst) < settings.worst_k else heapq.heappushpop)(worst, item)
            writer.write(columns)
            rows += keep
            progress.update(rows)
    finally:
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
    if slices:
        summary["slices"] = {column: acc.result() for column, acc in slices.items()}
    return SplitResult(summary, merged, confusion, sorted(worst, reverse=True))


def _write_plots(out, result: SplitResult, split: str, height: int, width: int, worst_by: Optional[str]) -> None:
    from aimed._plots import save_confusion_matrix, save_histogram, save_image_grid

    plots = out / "plots"
    plots.mkdir()
    save_confusion_matrix(plots / "confusion_matrix.png", result.confusion, f"{split}: confusion matrix")
    for name, values in result.values.items():
        save_histogram(plots / f"hist_{_safe(name)}.png", values, f"{split}: {name}")
    titles = [f"{i}\ntrue {t} pred {p}\n{worst_by}={s:.3g}" for s, _, _, t, p, i in result.worst]
    save_image_grid(plots / "worst.png", [w[2] for w in result.worst], titles, height, width)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)


def run(ctx: RunContext, split: str, gate: bool = True) -> Dict[str, Any]:
    """Evaluate the run's exported model on ``split`` into ``results/<run>/evaluate/<split>``.

    On the validation split the ``evaluation.thresholds`` gate is checked: the outputs are
    written either way (with ``blessed``), then a failed gate raises unless ``gate`` is off.
    An evaluation that fails its gate is written without ``fingerprint.json``, the record of a
    completed stage, so it is never taken as up to date.
    """
    import keras

    config = ctx.config
    evaluation = config.evaluation
    settings = EvalSettings(evaluation.report_format, tuple(evaluation.slice_by), evaluation.worst_k,
                            evaluation.worst_by)
    enforce_gate = gate and os.environ.get(NO_GATE_ENV) != "1"
    ctx.model_builder()  # imports the user's modules, so custom layers deserialise
    model = keras.models.load_model(ctx.stage_dir("export") / "model.keras", compile=True)
    card = json.loads((ctx.stage_dir("export") / "model_card.json").read_text())
    with staged_dir(ctx.stage_dir("evaluate") / split) as out:
        result = evaluate_split(model, ctx.data_loader(), ctx.preprocessor(), ctx.evaluator(), split,
                                out / REPORT_NAMES[settings.report_format], settings)
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
        _write_plots(out, result, split, config.input_height, config.input_width, settings.worst_by
                     or next(iter(result.values), None))
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
