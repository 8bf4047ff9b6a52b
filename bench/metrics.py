"""9. Segmentation metrics: aimed.metrics' batched functions vs per-sample sklearn-style ones.

2,000 masks of 128x128 (``y_true`` random ellipses, ``y_pred`` noisy probabilities around them,
a fixed seed). The baseline is what a segmentation team writes for ``get_eval_funcs()``: one
function per metric on one data point, thresholding at 0.5 and calling scikit-learn's
``f1_score`` (Dice), ``jaccard_score`` (IoU), ``recall_score`` (TPR, and TNR on the inverted
masks) and ``precision_score``, called by aimed once per sample. aimed's are the functions of
:mod:`aimed.metrics` (``dice``, ``iou``, ``tpr``, ``tnr``, ``precision``, thresholded at 0.5),
called once on the whole batch of 2,000. Both sets run in this process, alternating, and their
values are asserted equal (within 1e-6; the same NaNs). The soft variants have no scikit-learn
counterpart; they are timed for reference.
"""

from __future__ import annotations

import time

import numpy as np

from bench import common

FULL = {"n": 2000, "side": 128, "repeats": 3}
QUICK = {"n": 200, "side": 128, "repeats": 1}
GOAL = 100.0
METRICS = ("dice", "iou", "tpr", "tnr", "precision")


def masks(n: int, side: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:side, :side] / side
    centres = rng.uniform(0.3, 0.7, (n, 2, 1, 1))
    radii = rng.uniform(0.1, 0.3, (n, 2, 1, 1))
    inside = ((yy - centres[:, 0]) / radii[:, 0]) ** 2 + ((xx - centres[:, 1]) / radii[:, 1]) ** 2 < 1
    y_true = inside[..., None].astype(np.float32)
    y_pred = np.clip(y_true * 0.7 + rng.normal(0.15, 0.2, y_true.shape), 0, 1).astype(np.float32)
    y_true[::50] = 0  # some empty masks: the definitions' edge cases are timed too
    return y_true, y_pred


def sklearn_style() -> dict:
    """Per-sample eval functions as a team writes them with scikit-learn."""
    from sklearn.metrics import f1_score, jaccard_score, precision_score, recall_score

    def binary(y_true, y_pred):
        return y_true.reshape(-1) > 0.5, y_pred.reshape(-1) > 0.5

    def dice(y_true, y_pred):
        t, p = binary(y_true, y_pred)
        return 1.0 if not t.any() and not p.any() else f1_score(t, p)

    def iou(y_true, y_pred):
        t, p = binary(y_true, y_pred)
        return 1.0 if not t.any() and not p.any() else jaccard_score(t, p)

    def tpr(y_true, y_pred):
        t, p = binary(y_true, y_pred)
        return recall_score(t, p) if t.any() else np.nan

    def tnr(y_true, y_pred):
        t, p = binary(y_true, y_pred)
        return recall_score(~t, ~p) if (~t).any() else np.nan

    def precision(y_true, y_pred):
        t, p = binary(y_true, y_pred)
        return precision_score(t, p) if p.any() else np.nan

    return {"dice": dice, "iou": iou, "tpr": tpr, "tnr": tnr, "precision": precision}


def run(quick: bool = False) -> dict:
    from aimed import metrics
    from aimed.evaluation.funcs import per_sample

    settings = QUICK if quick else FULL
    y_true, y_pred = masks(settings["n"], settings["side"])
    baseline_funcs = sklearn_style()
    batched_funcs = {name: getattr(metrics, name)() for name in METRICS}
    soft_funcs = {"soft_dice": metrics.soft_dice(), "soft_iou": metrics.soft_iou()}
    baseline_times, aimed_times, soft_times = [], [], []
    max_difference = 0.0
    for _ in range(settings["repeats"]):
        start = time.perf_counter()
        expected = {name: per_sample(f, y_true, y_pred) for name, f in baseline_funcs.items()}
        baseline_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        got = {name: f(y_true, y_pred) for name, f in batched_funcs.items()}
        aimed_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        for f in soft_funcs.values():
            f(y_true, y_pred)
        soft_times.append(time.perf_counter() - start)
        for name in METRICS:
            np.testing.assert_allclose(got[name], expected[name], rtol=1e-6, atol=1e-6, equal_nan=True)
            finite = np.isfinite(expected[name])
            max_difference = max(max_difference, float(np.max(np.abs(got[name][finite] - expected[name][finite]))))
    t_base, t_aimed = common.summary(baseline_times)["median"], common.summary(aimed_times)["median"]
    speedup = common.ratio(t_base, t_aimed)
    n, side = settings["n"], settings["side"]
    return {
        "name": "metrics",
        "title": "9. Segmentation metrics (aimed.metrics vs per-sample scikit-learn)",
        "method": __doc__.split("\n\n", 1)[1].strip(),
        "setup": {"masks": n, "side": side, "metrics": list(METRICS)},
        "measurements": [
            common.measurement(f"per-sample scikit-learn, 5 metrics x {n} masks (baseline)", baseline_times, "s",
                               samples_per_s=n / t_base),
            common.measurement(f"aimed.metrics batched, 5 metrics x {n} masks", aimed_times, "s",
                               ratio=common.ratio(t_aimed, t_base), samples_per_s=n / t_aimed),
            common.measurement("aimed.metrics soft_dice + soft_iou (reference)", soft_times, "s"),
        ],
        "goals": [common.goal(
            f"aimed.metrics >= {GOAL:.0f}x faster than per-sample scikit-learn on {n} masks of {side}x{side}, "
            "identical values", speedup, ">=", GOAL,
            f"{speedup:.0f}x ({t_aimed:.3f} s vs {t_base:.2f} s; max abs. difference {max_difference:.1e})")],
    }


if __name__ == "__main__":
    common.worker_main("bench.metrics")
