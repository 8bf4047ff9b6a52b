"""evaluate: one streaming pass over a split, writing a per-datapoint report and a summary.

Predictions are made batch by batch; each batch's rows go to ``report.csv`` at once, and the
compiled loss and metrics are updated from the same predictions, so memory is bounded by the
batch size (plus one float per row and eval function, for the percentiles). Exactly ``n`` rows
are written: batches that wrap around past the end of the split are cut.
"""

from __future__ import annotations

import csv
import json
import logging
from typing import Any, Dict, List, Optional

import numpy as np

from aimed._io import atomic_write_json, staged_dir
from aimed.data import batched_split, decode_ids, split_batch, take
from aimed.evaluation.funcs import eval_functions
from aimed.run import RunContext

log = logging.getLogger(__name__)

PERCENTILES = (5, 50, 95)


def _fmt(value: float) -> str:
    return repr(float(value))


def is_classifier(y_pred: np.ndarray, y_true: np.ndarray) -> bool:
    """A softmax-style output: one score per class, with sparse or one-hot labels."""
    if y_pred.ndim != 2 or y_pred.shape[1] < 2:
        return False
    return y_true.ndim == 1 or (y_true.ndim == 2 and y_true.shape[1] in (1, y_pred.shape[1]))


def class_labels(y_true: np.ndarray, n_classes: int) -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim == 2 and y.shape[1] == n_classes:
        return np.argmax(y, axis=1)
    return y.reshape(-1).astype(np.int64)


def _summary_value(row_value: np.ndarray) -> str:
    """A per-row cell for an array: scalars as they are, small vectors as JSON, big arrays by their mean."""
    value = np.asarray(row_value)
    if value.size == 1:
        scalar = value.reshape(-1)[0]
        return str(scalar.item()) if np.issubdtype(value.dtype, np.integer) else _fmt(scalar)
    if value.ndim == 1 and value.size <= 32:
        return json.dumps([float(f"{v:.8g}") for v in value.tolist()])
    return _fmt(np.mean(value))


def describe(values: np.ndarray) -> Dict[str, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return {"mean": None, "std": None, "min": None, "max": None, **{f"p{p}": None for p in PERCENTILES}, "n_nan": int(values.size)}
    stats = {"mean": float(np.mean(finite)), "std": float(np.std(finite)), "min": float(np.min(finite)),
             "max": float(np.max(finite))}
    stats.update({f"p{p}": float(v) for p, v in zip(PERCENTILES, np.percentile(finite, PERCENTILES))})
    stats["n_nan"] = int(values.size - finite.size)
    return stats


def classification_summary(confusion: np.ndarray) -> Dict[str, Any]:
    total = confusion.sum()
    true_pos = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(axis=0)
    actual = confusion.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, true_pos / predicted, 0.0)
        recall = np.where(actual > 0, true_pos / actual, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return {
        "accuracy": float(true_pos.sum() / total) if total else None,
        "per_class": {str(c): {"precision": float(precision[c]), "recall": float(recall[c]), "f1": float(f1[c]),
                               "support": int(actual[c])} for c in range(len(confusion))},
        "confusion_matrix": confusion.tolist(),
    }


def split_ids(loader: Any, split: str, n: int) -> Optional[List[str]]:
    """Ids of the validation split, which yields weights rather than ids: from the loader, else positions."""
    if split != "validation":
        return None
    index = loader.get_validation_index()
    ids = decode_ids(index) if index is not None else [str(i) for i in range(n)]
    if len(ids) != n:
        raise ValueError(f"get_validation_index() returned {len(ids)} ids for a split of n={n}")
    return ids


def evaluate_split(model: Any, loader: Any, preprocessor: Any, evaluator: Any, split: str, report_path) -> Dict[str, Any]:
    """Write ``report_path`` (CSV) for one split and return its summary."""
    batches, n, n_iter = batched_split(loader, None, preprocessor, split, for_eval=True)
    ids = split_ids(loader, split, n)
    funcs = eval_functions(evaluator)
    metadata = loader.get_metadata(split)
    metric_values: Dict[str, List[np.ndarray]] = {name: [] for name in funcs}
    model.reset_metrics()
    loss_sum, weight_sum = 0.0, 0.0
    confusion = None
    rows = 0
    with open(report_path, "w", newline="") as f:
        writer = None
        for batch in take(batches, n_iter):
            if rows >= n:
                break
            x, y, third = split_batch(batch)
            keep = min(len(x), n - rows)
            x, y = x[:keep], y[:keep]
            batch_ids = ids[rows:rows + keep] if ids is not None else decode_ids(third[:keep])
            weights = None if ids is None or third is None else np.asarray(third[:keep], dtype=np.float32)
            y_pred = np.asarray(model.predict_on_batch(x))
            y_true = np.asarray(y)
            loss = float(model.compute_loss(x=x, y=y_true, y_pred=y_pred, sample_weight=weights, training=False))
            loss_sum += loss * keep
            weight_sum += keep
            model.compute_metrics(x, y_true, y_pred, sample_weight=weights)
            columns: Dict[str, Any] = {"data_id": batch_ids}
            classifier = is_classifier(y_pred, y_true)
            columns["y_true"] = [_summary_value(v) for v in y_true]
            columns["y_pred"] = [_summary_value(v) for v in y_pred]
            if classifier:
                classes = class_labels(y_true, y_pred.shape[1])
                predicted = np.argmax(y_pred, axis=1)
                columns["y_true"] = [str(int(c)) for c in classes] if y_true.ndim > 1 else columns["y_true"]
                columns["pred_class"] = [str(int(c)) for c in predicted]
                columns["confidence"] = [_fmt(c) for c in np.max(y_pred, axis=1)]
                if confusion is None:
                    confusion = np.zeros((y_pred.shape[1], y_pred.shape[1]), dtype=np.int64)
                np.add.at(confusion, (classes, predicted), 1)
            for name, func in funcs.items():
                values = func(y_true, y_pred)
                metric_values[name].append(values)
                columns[name] = [_fmt(v) for v in values]
            if metadata is not None:
                for column in metadata.columns:
                    columns[column] = [str(metadata[column].get(i, "")) for i in batch_ids]
            if writer is None:
                writer = csv.writer(f, lineterminator="\n")
                writer.writerow(list(columns))
            writer.writerows(zip(*columns.values()))
            rows += keep
    if rows != n:
        raise ValueError(f"the {split} split yielded {rows} data points in {n_iter} batches, but its loader reports n={n}")
    compiled = {k: float(v) for k, v in model.get_metrics_result().items() if k != "loss" and np.ndim(v) == 0}
    summary: Dict[str, Any] = {
        "split": split,
        "n": n,
        "metrics": {name: describe(np.concatenate(v)) for name, v in metric_values.items()},
        "model_metrics": {"loss": loss_sum / weight_sum if weight_sum else None, **compiled},
        "eval_function_modes": {name: func.mode for name, func in funcs.items()},
    }
    if confusion is not None:
        summary["classification"] = classification_summary(confusion)
    return summary


def run(ctx: RunContext, split: str) -> Dict[str, Any]:
    """Evaluate the exported model of a run on ``split`` into ``results/<run>/evaluate/<split>``."""
    import keras

    ctx.model_builder()  # imports the user's modules, so custom layers deserialise
    model = keras.models.load_model(ctx.stage_dir("export") / "model.keras", compile=True)
    with staged_dir(ctx.stage_dir("evaluate") / split) as out:
        summary = evaluate_split(model, ctx.data_loader(), ctx.preprocessor(), ctx.evaluator(), split, out / "report.csv")
        atomic_write_json(out / "summary.json", summary)
        ctx.record_fingerprint("evaluate", out, split)
    log.info("%s: %s", split, json.dumps(summary["model_metrics"]))
    return summary
