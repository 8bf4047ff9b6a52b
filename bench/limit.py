"""7. The limit: this machine's float32 matmul peak, and the fraction of it that training reaches.

Peak: eager ``tf.matmul`` of square float32 matrices (1024, 2048, 4096), 2n^3 FLOPs each,
about 20 GFLOP per repeat, after a warm-up; 5 repeats per size; the best size's median is the peak.

Training FLOPs of the example MLP: forward 2 x (784 x 512 + 512 x 10) = 813,056 FLOPs per
sample; a training step costs about 3x forward (forward, gradients of the activations and of
the weights); validation is forward only. Figures:

- bare Keras, compute-bound: the same MLP fitted (batch 32 as in the example config, and 128;
  no validation) on images already in memory (``DataLoaderInMemory``, 10,000 images), this
  benchmark's own measurement;
- bare Keras and aimed on the tf.data example: the per-epoch medians of benchmark 1 (20,000
  training + 2,000 validation images per epoch), when it ran in the same ``make bench``.
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
import time

from bench import common

FULL = dict(matrices=(1024, 2048, 4096), repeats=5, epochs=6, sizes=common.SIZES_10K)
QUICK = dict(matrices=(512, 1024), repeats=2, epochs=3, sizes=common.SIZES_QUICK)
TRAIN_FLOPS = 3 * common.MLP_FORWARD_FLOPS
BATCHES = (32, 128)


def matmul_peak(sizes: list, repeats: int) -> dict:
    import tensorflow as tf

    results = {}
    for n in sizes:
        a = tf.random.normal([n, n], dtype=tf.float32)
        b = tf.random.normal([n, n], dtype=tf.float32)
        calls = max(1, int(2e10 // (2 * n ** 3)))     # ~20 GFLOP per repeat
        tf.matmul(a, b).numpy()                        # warm-up
        times = []
        for _ in range(repeats):
            # eager calls (synchronous on CPU); a traced loop would let grappler merge the identical matmuls
            start = time.perf_counter()
            for _ in range(calls):
                c = tf.matmul(a, b)
            c.numpy()
            times.append(time.perf_counter() - start)
        results[n] = [2 * n ** 3 * calls / t / 1e9 for t in times]
    return results


def epoch_flops(n_train: int, n_val: int) -> float:
    return n_train * TRAIN_FLOPS + n_val * common.MLP_FORWARD_FLOPS


def run(quick: bool = False) -> dict:
    p = QUICK if quick else FULL
    gflops = {int(k): v for k, v in common.run_worker("limit", "matmul_peak", sizes=list(p["matrices"]),
                                                      repeats=p["repeats"]).items() if k != "_wall" and k != "_maxrss_mb"}
    best = max(gflops, key=lambda n: common.summary(gflops[n])["median"])
    peak = common.summary(gflops[best])["median"]
    data = common.dataset(**p["sizes"])
    with tempfile.TemporaryDirectory(prefix="bench-limit-") as tmp:
        project = common.make_project(pathlib.Path(tmp) / "project", runs={
            f"mem{batch}": dict(base="mnist-tf", data_dir=str(data), batch_size=batch,
                                data_loader_class="bench_components.DataLoaderInMemory") for batch in BATCHES})
        fits = {batch: common.run_worker("common", "fit_raw", project=str(project), run=f"mem{batch}", epochs=p["epochs"],
                                         validation=False) for batch in BATCHES}
    measurements = [common.measurement(f"tf.matmul {n}x{n} float32", v, "GFLOP/s", **({"ratio": 1.0} if n == best else {}))
                    for n, v in sorted(gflops.items())]
    fractions = {}
    for batch, fit in fits.items():
        rates = [fit["n_train"] * TRAIN_FLOPS / t / 1e9 for t in fit["epoch_times"][1:]]
        rate = common.summary(rates)["median"]
        measurements.append(common.measurement(f"bare Keras MLP training, data in memory, batch {batch}", rates, "GFLOP/s",
                                               ratio=rate / peak, samples_per_s=rate * 1e9 / TRAIN_FLOPS))
        fractions[f"bare Keras, in memory, batch {batch}"] = rate / peak
    previous = os.environ.get("AIMED_BENCH_RESULTS")
    overhead = None
    if previous and pathlib.Path(previous).is_file():
        overhead = json.loads(pathlib.Path(previous).read_text()).get("benchmarks", {}).get("training_overhead")
    if overhead:
        flops = epoch_flops(overhead["setup"]["n_train"], overhead["setup"]["n_val"])
        for key, label in (("bare", "bare Keras, tf.data example (benchmark 1)"),
                           ("aimed", "aimed, tf.data example (benchmark 1)")):
            t = overhead["epoch_medians"][key]
            rate = flops / t / 1e9
            fractions[label] = rate / peak
            measurements.append(common.single(label, rate, "GFLOP/s", ratio=rate / peak,
                                              samples_per_s=(overhead["setup"]["n_train"] + overhead["setup"]["n_val"]) / t))
    return {
        "name": "limit",
        "title": "7. The limit (matmul peak vs training FLOP/s)",
        "method": __doc__.split("\n\n", 1)[1].strip(),
        "setup": {"peak_gflops": peak, "peak_size": best, "train_flops_per_sample": TRAIN_FLOPS,
                  "fractions_of_peak": fractions, "benchmark_1_available": bool(overhead)},
        "measurements": measurements,
        "goals": [],
        "summary": "; ".join(f"{k}: {v:.0%} of peak" for k, v in fractions.items()),
    }


if __name__ == "__main__":
    common.worker_main("bench.limit")
