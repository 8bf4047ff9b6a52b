"""aimed.evaluation.summary: statistics, classification scores, slices, the quality gate, MLflow keys."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from aimed.evaluation.summary import (
    SliceAccumulator,
    check_thresholds,
    classification_summary,
    describe,
    flat_metrics,
    gate_values,
    safe_name,
)


def test_describe_of_known_values_ignores_nan_and_inf():
    values = np.array([4.0, 1.0, np.nan, 3.0, np.inf, 2.0, -np.inf])
    stats = describe(values)
    assert stats["n_nan"] == 3
    assert stats["mean"] == pytest.approx(2.5)
    assert stats["std"] == pytest.approx(np.std([1, 2, 3, 4]))
    assert (stats["min"], stats["max"]) == (1.0, 4.0)
    assert stats["p50"] == pytest.approx(2.5)
    assert stats["p5"] == pytest.approx(np.percentile([1, 2, 3, 4], 5))
    assert stats["p95"] == pytest.approx(np.percentile([1, 2, 3, 4], 95))
    assert set(stats) == {"n_nan", "mean", "std", "min", "p5", "p50", "p95", "max"}
    assert all(type(v) is float for k, v in stats.items() if k != "n_nan")
    assert type(stats["n_nan"]) is int


@pytest.mark.parametrize("values", [np.array([np.nan, np.inf]), np.array([])])
def test_describe_without_finite_values_gives_none(values):
    stats = describe(values)
    assert stats["n_nan"] == values.size
    assert {k: v for k, v in stats.items() if k != "n_nan"} == dict.fromkeys(
        ("mean", "std", "min", "max", "p5", "p50", "p95"))


def test_classification_summary_of_a_known_confusion_matrix():
    confusion = np.array([[5, 1, 0],
                          [2, 2, 0],
                          [0, 0, 0]])  # rows: true class; class 2 never occurs nor is predicted
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division warnings
        result = classification_summary(confusion)
    assert result["accuracy"] == pytest.approx(0.7)
    c0, c1, c2 = (result["per_class"][k] for k in ("0", "1", "2"))
    assert c0["precision"] == pytest.approx(5 / 7) and c0["recall"] == pytest.approx(5 / 6)
    assert c0["f1"] == pytest.approx(2 * (5 / 7) * (5 / 6) / (5 / 7 + 5 / 6))
    assert c1["precision"] == pytest.approx(2 / 3) and c1["recall"] == pytest.approx(0.5)
    assert (c0["support"], c1["support"], c2["support"]) == (6, 4, 0)
    assert c2 == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_classification_summary_of_no_samples_has_no_accuracy():
    assert classification_summary(np.zeros((2, 2), dtype=np.int64))["accuracy"] is None


def test_slice_accumulator_counts_accuracy_and_means_per_value_over_batches():
    acc = SliceAccumulator("writer")
    acc.add(["a", "b", "a"], {"mae": np.array([1.0, 2.0, 3.0])}, np.array([True, False, True]))
    acc.add(["b", "c"], {"mae": np.array([4.0, 6.0])}, np.array([True, False]))
    acc.add([], {"mae": np.array([])}, np.array([], dtype=bool))  # an empty batch changes nothing
    assert acc.column == "writer"
    assert acc.result() == {
        "a": {"n": 2, "accuracy": 1.0, "mae_mean": 2.0},
        "b": {"n": 2, "accuracy": 0.5, "mae_mean": 3.0},
        "c": {"n": 1, "accuracy": 0.0, "mae_mean": 6.0},
    }


def test_slice_accumulator_without_correctness_has_no_accuracy():
    acc = SliceAccumulator("y_true")
    acc.add(["1", "0", "1"], {"err": np.array([0.5, 0.25, 1.5])}, None)
    assert acc.result() == {"0": {"n": 1, "err_mean": 0.25}, "1": {"n": 2, "err_mean": 1.0}}


def test_slice_accumulator_leaves_out_a_metric_that_is_never_finite():
    acc = SliceAccumulator("site")
    acc.add(["x", "y"], {"bad": np.array([np.nan, np.inf]), "ok": np.array([1.0, 3.0])}, None)
    assert acc.result() == {"x": {"n": 1, "ok_mean": 1.0}, "y": {"n": 1, "ok_mean": 3.0}}


SUMMARY = {
    "metrics": {"abs error": {"mean": 0.2, "std": 0.1, "n_nan": 0, "p50": None}},
    "model_metrics": {"loss": 0.3, "auc": None},
    "classification": {"accuracy": 0.9},
}


def test_gate_values_names_function_means_model_metrics_and_accuracy():
    assert gate_values(SUMMARY) == {"abs error": 0.2, "loss": 0.3, "accuracy": 0.9}
    assert gate_values({}) == {}


def test_check_thresholds_passes_and_fails():
    result = check_thresholds(SUMMARY, {"accuracy": {"min": 0.8}, "loss": {"max": 0.5}})
    assert result["blessed"] is True and result["failures"] == []
    assert result["checks"] == [
        {"metric": "accuracy", "min": 0.8, "value": 0.9, "passed": True},
        {"metric": "loss", "max": 0.5, "value": 0.3, "passed": True},
    ]

    result = check_thresholds(SUMMARY, {"loss": {"max": 0.25, "min": 0.1}, "accuracy": {"min": 0.95},
                                        "f1": {"min": 0.5}})
    assert result["blessed"] is False
    assert [(c["metric"], c["passed"]) for c in result["checks"]] == [
        ("accuracy", False), ("f1", False), ("loss", False), ("loss", True)]
    assert len(result["failures"]) == 3
    assert result["failures"][0] == "accuracy = 0.9, required >= 0.95"
    assert "'f1' is not a metric of this evaluation" in result["failures"][1]
    assert "known: abs error, accuracy, loss" in result["failures"][1]
    assert result["failures"][2] == "loss = 0.3, required <= 0.25"


def test_check_thresholds_limits_are_inclusive():
    assert check_thresholds(SUMMARY, {"accuracy": {"min": 0.9, "max": 0.9}})["blessed"] is True


def test_safe_name():
    assert safe_name("abs error/p-5.x") == "abs_error_p_5_x"
    assert safe_name("mae2") == "mae2"


def test_flat_metrics():
    assert flat_metrics(SUMMARY, "test") == {
        "test_loss": 0.3,
        "test_abs_error_mean": 0.2,
        "test_abs_error_std": 0.1,
        "test_accuracy": 0.9,
    }
    no_classes = {"metrics": {}, "model_metrics": {"loss": 1.5}}
    assert flat_metrics(no_classes, "validation") == {"validation_loss": 1.5}
