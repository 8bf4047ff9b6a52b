"""3. Evaluation: per-sample eval functions in the tutorial's style vs aimed's evaluate_split, and its memory.

Speed: the 10,000 test images of MNIST, decoded once into memory (bench/components.py), the
512-unit MLP, batch 32, three eval functions written per-sample style on Keras' functional
losses (``keras.losses.sparse_categorical_crossentropy``, ``categorical_crossentropy`` and
``kl_divergence`` on one-hot labels, each ``lambda y_true, y_pred: f(...).numpy()``).

- baseline (the tutorial's evaluator): for each batch, ``predict_on_batch``, then a Python loop
  calling every eval function on every sample, rows collected and written to a CSV;
- aimed: ``aimed.evaluation.split.evaluate_split`` on the same model, loader, preprocessor and
  functions: it regroups the preprocessor's batches into evaluation batches of 1,024 rows and
  makes one compiled call per batch for the predictions, the loss and the metrics; it checks
  each function on the first batch (per sample on 8 samples spread over it, and batched, within
  1e-6 relative), then calls it once per batch; it also writes the report, the compiled loss
  and metrics, the confusion matrix and the worst samples.

Both run in one process, alternating, after a warm-up pass of each; the per-sample values of
both are asserted equal within 1e-6 relative. The "functions only" lines time just the eval
function calls: inside the baseline's loop, and aimed's EvalFunction (first-batch check, then
batch calls) over the same predictions in aimed's evaluation batches. For reference, aimed is
also timed with the preprocessor's batches of 128 (regrouped into the same evaluation batches,
so only the input pipeline differs; the per-sample baseline's cost does not depend on the batch
size: it is the function calls).

Memory: a separate process evaluates a synthetic test split of 200,000 random 28x28 images
(made on the fly, bench/components.py ``DataLoaderSynthetic``, batch 128) with the same three
functions; peak RSS (``ru_maxrss``) after a 2,000-sample warm-up pass vs after the 200,000 pass,
and the RSS sampled every 50 ms during it.
"""

from __future__ import annotations

import pathlib
import tempfile
import time

import numpy as np

from bench import common

FULL = dict(n=10000, repeats=5, memory_n=200000)
QUICK = dict(n=1000, repeats=2, memory_n=20000)
SPEED_GOAL = 50.0
MEMORY_GOAL_MB = 200.0
TOLERANCE = 1e-6


def _setup(project: str, run: str):
    ctx = common.run_context(pathlib.Path(project), run)
    import keras

    keras.utils.set_random_seed(ctx.config.seed)
    model = ctx.model_builder().get_compiled_model()
    return ctx, model


def per_sample_evaluation(model, loader, preprocessor, funcs, report_path, limit=None):
    """The tutorial-style evaluator: batched predictions, each eval function called per sample.

    Returns the values of each function and the time spent inside the function calls.
    """
    import pandas as pd

    source, n = loader.create_test_generator()
    n = min(n, limit or n)
    batches, n_iter = preprocessor.add_preprocess(source, n)
    rows = []
    in_funcs = 0.0
    for x, y, ids in batches.take(n_iter).as_numpy_iterator():
        y_pred = model.predict_on_batch(x)
        for i in range(len(x)):
            if len(rows) == n:
                break
            row = {"data_id": ids[i].decode(), "y_true": int(y[i]), "pred_class": int(np.argmax(y_pred[i]))}
            start = time.perf_counter()
            for name, func in funcs.items():
                row[name] = float(func(y[i], y_pred[i]))
            in_funcs += time.perf_counter() - start
            rows.append(row)
    pd.DataFrame(rows).to_csv(report_path, index=False)
    return {name: np.array([r[name] for r in rows]) for name in funcs}, in_funcs


def eval_speed(project: str, run: str, repeats: int) -> dict:
    from aimed.evaluation.batches import eval_batches
    from aimed.evaluation.funcs import EvalFunction
    from aimed.evaluation.split import EVAL_BATCH_SIZE, evaluate_split

    ctx, model = _setup(project, run)
    loader, preprocessor, evaluator = ctx.data_loader(), ctx.preprocessor(), ctx.evaluator()
    funcs = evaluator.get_eval_funcs()
    out = pathlib.Path(project) / "out"
    out.mkdir(exist_ok=True)
    times = {"per_sample": [], "aimed": [], "funcs_per_sample": [], "funcs_aimed": [], "aimed_128": []}
    preprocessor_128 = ctx.preprocessor()
    preprocessor_128.batch_size = 128
    max_rel = 0.0
    modes = {}
    # warm-up: a full aimed pass and a few batches of the per-sample one (tracing, caches)
    per_sample_evaluation(model, loader, preprocessor, funcs, out / "warmup.csv", limit=256)
    evaluate_split(model, loader, preprocessor, evaluator, "test", out / "warmup_report.csv")
    for repeat in range(repeats):
        start = time.perf_counter()
        baseline, t_funcs_base = per_sample_evaluation(model, loader, preprocessor, funcs, out / "per_sample.csv")
        t_base = time.perf_counter() - start
        start = time.perf_counter()
        result = evaluate_split(model, loader, preprocessor, evaluator, "test", out / "report.csv")
        t_aimed = time.perf_counter() - start
        modes = result.summary["eval_function_modes"]
        for name, values in baseline.items():
            got = result.values[name]
            assert got.shape == values.shape, (name, got.shape, values.shape)
            rel = np.abs(got - values) / np.maximum(np.abs(values), 1e-30)
            max_rel = max(max_rel, float(np.max(rel)))
            assert np.allclose(got, values, rtol=TOLERANCE, atol=0), f"{name}: max relative difference {np.max(rel)}"
        # aimed's function calls alone (first-batch check, then batched), over the same predictions
        source, n = loader.create_test_generator()
        batches, n_iter = preprocessor.add_preprocess(source, n)
        pairs = [(y, model.predict_on_batch(x)) for x, y, _ in eval_batches(batches, n_iter, n, EVAL_BATCH_SIZE)]
        wrapped = [EvalFunction(name, func) for name, func in funcs.items()]
        start = time.perf_counter()
        for y, y_pred in pairs:
            for func in wrapped:
                func(y, y_pred)
        t_funcs_aimed = time.perf_counter() - start
        start = time.perf_counter()
        evaluate_split(model, loader, preprocessor_128, evaluator, "test", out / "report_128.csv")
        t_aimed_128 = time.perf_counter() - start
        for key, value in zip(times, (t_base, t_aimed, t_funcs_base, t_funcs_aimed, t_aimed_128)):
            times[key].append(value)
        print(f"  repeat {repeat + 1}: per-sample {t_base:.2f} s, aimed {t_aimed:.2f} s; "
              f"in the functions {t_funcs_base:.2f} s vs {t_funcs_aimed:.3f} s; "
              f"aimed at preprocessor batch 128 {t_aimed_128:.2f} s",
              flush=True)
    return {"times": times, "n": n, "max_relative_difference": max_rel, "modes": modes,
            "batch_size": ctx.config.batch_size}


def eval_memory(project: str, run: str, n: int, warmup: int = 2000) -> dict:
    from aimed.evaluation.split import evaluate_split

    ctx, model = _setup(project, run)
    loader, preprocessor, evaluator = ctx.data_loader(), ctx.preprocessor(), ctx.evaluator()
    out = pathlib.Path(project) / "out"
    out.mkdir(exist_ok=True)
    loader.n = warmup
    evaluate_split(model, loader, preprocessor, evaluator, "test", out / "warmup.csv")
    before = common.peak_rss_mb()
    loader.n = n
    start = time.perf_counter()
    with common.RssSampler() as sampler:
        result = evaluate_split(model, loader, preprocessor, evaluator, "test", out / "report.csv")
    elapsed = time.perf_counter() - start
    after = common.peak_rss_mb()
    assert result.summary["n"] == n
    return {"maxrss_before_mb": before, "maxrss_after_mb": after, "growth_mb": after - before,
            "sampled_start_mb": sampler.start, "sampled_peak_mb": sampler.peak, "seconds": elapsed, "n": n,
            "samples_per_s": n / elapsed}


def run(quick: bool = False) -> dict:
    p = QUICK if quick else FULL
    # the 10,000 test images of the full MNIST (quick: the first 1,000)
    data = common.dataset(train=10, validation=10, test=p["n"]) if quick else common.dataset()
    with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp:
        tmp = pathlib.Path(tmp)
        project = common.make_project(tmp / "project", runs={
            "speed": dict(base="mnist-tf", data_dir=str(data), data_loader_class="bench_components.DataLoaderInMemory",
                          evaluator_class="bench_components.KerasLossEvaluator"),
            "memory": dict(base="mnist-tf", data_loader_class="bench_components.DataLoaderSynthetic",
                           evaluator_class="bench_components.KerasLossEvaluator", batch_size=128),
        })
        speed = common.run_worker("evaluation", "eval_speed", project=str(project), run="speed", repeats=p["repeats"])
        memory = common.run_worker("evaluation", "eval_memory", project=str(project), run="memory", n=p["memory_n"])
    t = {k: common.summary(v)["median"] for k, v in speed["times"].items()}
    speedup = common.ratio(t["per_sample"], t["aimed"])
    n = speed["n"]
    return {
        "name": "evaluation",
        "title": "3. Evaluation (per-sample eval functions vs aimed's evaluate_split; memory)",
        "method": __doc__.split("\n\n", 1)[1].strip(),
        "setup": {"n": n, "batch_size": speed["batch_size"], "eval_function_modes": speed["modes"],
                  "max_relative_difference": speed["max_relative_difference"], "memory": memory},
        "measurements": [
            common.measurement(f"per-sample evaluation of {n} samples (baseline)", speed["times"]["per_sample"], "s",
                               samples_per_s=n / t["per_sample"]),
            common.measurement(f"aimed evaluate_split of {n} samples", speed["times"]["aimed"], "s",
                               ratio=common.ratio(t["aimed"], t["per_sample"]), samples_per_s=n / t["aimed"]),
            common.measurement(f"aimed evaluate_split of {n} samples, preprocessor batch 128 instead of 32",
                               speed["times"]["aimed_128"],
                               "s", ratio=common.ratio(t["aimed_128"], t["per_sample"]), samples_per_s=n / t["aimed_128"]),
            common.measurement("functions only: per-sample loop (baseline)", speed["times"]["funcs_per_sample"], "s"),
            common.measurement("functions only: aimed EvalFunction (check + batched)", speed["times"]["funcs_aimed"], "s",
                               ratio=common.ratio(t["funcs_aimed"], t["funcs_per_sample"])),
            common.single(f"memory: peak RSS growth over a {memory['n']:,}-sample pass", memory["growth_mb"], "MB",
                          sampled_peak_mb=memory["sampled_peak_mb"], samples_per_s=memory["samples_per_s"]),
        ],
        "goals": [
            common.goal("aimed evaluate_split >= 50x faster than per-sample eval functions (same values within 1e-6)",
                        speedup, ">=", SPEED_GOAL,
                        f"{speedup:.1f}x ({t['aimed']:.2f} s vs {t['per_sample']:.2f} s; functions alone "
                        f"{common.ratio(t['funcs_per_sample'], t['funcs_aimed']):.0f}x; max rel. diff "
                        f"{speed['max_relative_difference']:.1e})"),
            common.goal(f"peak RSS growth evaluating {memory['n']:,} samples < 200 MB", memory["growth_mb"], "<",
                        MEMORY_GOAL_MB, f"{memory['growth_mb']:.0f} MB (RSS {memory['maxrss_before_mb']:.0f} -> "
                        f"{memory['maxrss_after_mb']:.0f} MB, {memory['samples_per_s']:,.0f} samples/s)"),
        ],
    }


if __name__ == "__main__":
    common.worker_main("bench.evaluation")
