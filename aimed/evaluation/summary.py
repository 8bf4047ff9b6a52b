"""Summaries of a split: per-metric statistics, classification scores, slices and the quality gate."""

from __future__ import annotations

import collections
from typing import Any, Dict, List, Mapping, Optional

import numpy as np

PERCENTILES = (5, 50, 95)


def describe(values: np.ndarray) -> Dict[str, Any]:
    """mean, std, min, p5, p50, p95, max of the finite values, and how many were NaN or inf."""
    finite = values[np.isfinite(values)]
    stats: Dict[str, Any] = {"n_nan": int(values.size - finite.size)}
    if finite.size == 0:
        stats.update({k: None for k in ("mean", "std", "min", "max", *(f"p{p}" for p in PERCENTILES))})
        return stats
    stats.update(mean=float(np.mean(finite)), std=float(np.std(finite)), min=float(np.min(finite)),
                 max=float(np.max(finite)))
    stats.update({f"p{p}": float(v) for p, v in zip(PERCENTILES, np.percentile(finite, PERCENTILES))})
    return stats


def classification_summary(confusion: np.ndarray) -> Dict[str, Any]:
    """Accuracy and per-class precision, recall, F1 and support from a confusion matrix (rows: true)."""
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
    }


class SliceAccumulator:
    """Per-value counts and metric sums of one report column, for ``evaluation.slice_by``."""

    def __init__(self, column: str) -> None:
        self.column = column
        self.count: collections.Counter = collections.Counter()
        self.correct: collections.Counter = collections.Counter()
        self.sums: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)

    def add(self, keys: List[str], metrics: Mapping[str, np.ndarray], correct: Optional[np.ndarray]) -> None:
        """Count one batch: ``keys`` are its cells of the column, ``metrics`` its eval-function values."""
        if not keys:
            return
        groups, group_of = np.unique(np.asarray(keys, dtype=str), return_inverse=True)
        groups = groups.tolist()
        for key, count in zip(groups, np.bincount(group_of).tolist()):
            self.count[key] += count
        if correct is not None:
            for key, count in zip(groups, np.bincount(group_of, weights=correct, minlength=len(groups)).tolist()):
                self.correct[key] += int(count)
        for name, values in metrics.items():
            finite = np.isfinite(values)
            n_finite = np.bincount(group_of[finite], minlength=len(groups))
            sums = np.bincount(group_of[finite], weights=values[finite], minlength=len(groups))
            # A metric enters the slice entries once any of its values is finite, as in a per-row sum.
            for key, n_values, total in zip(groups, n_finite.tolist(), sums.tolist()):
                if n_values:
                    self.sums[name][key] += total

    def result(self) -> Dict[str, Any]:
        out = {}
        for key in sorted(self.count, key=str):
            n = self.count[key]
            entry: Dict[str, Any] = {"n": n}
            if self.correct or any(self.correct.values()):
                entry["accuracy"] = self.correct[key] / n
            entry.update({f"{name}_mean": self.sums[name][key] / n for name in self.sums})
            out[key] = entry
        return out


def gate_values(summary: Mapping[str, Any]) -> Dict[str, float]:
    """Every value a threshold can name: eval-function means, model metrics, accuracy."""
    values = {name: stats["mean"] for name, stats in summary.get("metrics", {}).items()}
    values.update({k: v for k, v in summary.get("model_metrics", {}).items() if v is not None})
    if "classification" in summary:
        values["accuracy"] = summary["classification"]["accuracy"]
    return values


def check_thresholds(summary: Mapping[str, Any], thresholds: Mapping[str, Mapping[str, float]]) -> Dict[str, Any]:
    """``{"blessed", "checks", "failures"}``: each threshold compared with the split's value."""
    values = gate_values(summary)
    checks, failures = [], []
    for metric, bounds in sorted(thresholds.items()):
        value = values.get(metric)
        for kind, limit in sorted(bounds.items()):
            if value is None:
                ok = False
                reason = f"'{metric}' is not a metric of this evaluation (known: {', '.join(sorted(values))})"
            else:
                ok = value >= limit if kind == "min" else value <= limit
                reason = f"{metric} = {value:.6g}, required {'>=' if kind == 'min' else '<='} {limit}"
            checks.append({"metric": metric, kind: limit, "value": value, "passed": ok})
            if not ok:
                failures.append(reason)
    return {"blessed": not failures, "checks": checks, "failures": failures}


def safe_name(name: str) -> str:
    """``name`` with every character but letters and digits made ``_``: a file name or an MLflow key part."""
    return "".join(c if c.isalnum() else "_" for c in name)


def flat_metrics(summary: Mapping[str, Any], split: str) -> Dict[str, float]:
    """The summary's numbers as ``{<split>_<name>: value}``, the metrics logged to MLflow."""
    flat = {f"{split}_{k}": v for k, v in summary["model_metrics"].items() if v is not None}
    for name, stats in summary["metrics"].items():
        flat.update({f"{split}_{safe_name(name)}_{k}": v for k, v in stats.items() if v is not None and k != "n_nan"})
    if "classification" in summary:
        flat[f"{split}_accuracy"] = summary["classification"]["accuracy"]
    return flat
