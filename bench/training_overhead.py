"""1. Training overhead: aimed's per-epoch time against a bare Keras script, same model and pipeline.

Both sides use the tutorial's tf.data example (DataLoaderTF + PreprocessorTF, the 512-unit MLP,
batch 32) on 20,000 training and 2,000 validation images of MNIST (JPEG folders), with
validation every epoch.

- baseline: a bare Keras script, one ``model.fit(epochs=E)`` with the same batches and the same
  TensorFlow settings as the run: ``enable_op_determinism()``, because the run keeps aimed's
  default ``deterministic: true`` (a user who wants reproducible training sets it in a bare
  script too, so its cost is not aimed's overhead);
- aimed: ``aimed.stages.train.run`` in-process: one fit over the per-epoch seeded pipelines
  joined into one source; at each epoch end it commits the checkpoint (weights + optimizer),
  writes the history, TensorBoard scalars and MLflow metrics (local SQLite store);
- attribution: the bare script without op determinism, in the first round only, which shows
  what determinism itself costs.

Each variant runs in fresh processes, alternating, 2 rounds of one process of 4 epochs each;
the first epoch of each process (tracing, set-up) is left out, the rest are the repeats. The
process CPU time per epoch (all threads) is shown too: it is less sensitive than wall time to
other processes sharing the cores.
"""

from __future__ import annotations

import pathlib
import shutil
import tempfile

from bench import common

EPOCHS, ROUNDS = 4, 2          # 3 timed epochs x 2 processes = 6 repeats per variant
QUICK = dict(epochs=3, rounds=1, sizes=common.SIZES_QUICK)
FULL = dict(epochs=EPOCHS, rounds=ROUNDS, sizes=common.SIZES_20K)
GOAL = 1.05


def make(tmp: pathlib.Path, epochs: int, sizes: dict) -> pathlib.Path:
    data = common.dataset(**sizes)
    return common.make_project(tmp / "project", runs={"bench-tf": dict(
        base="mnist-tf", data_dir=str(data), epochs=epochs, training={"verbose": 2},
        mlflow={"tracking_uri": f"sqlite:///{tmp / 'mlflow.db'}"})})


def run(quick: bool = False) -> dict:
    p = QUICK if quick else FULL
    times = {"bare": [], "bare_det": [], "aimed": []}
    cpu = {"bare_det": [], "aimed": []}
    info = {}
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        project = make(pathlib.Path(tmp), p["epochs"], p["sizes"])
        for round_ in range(p["rounds"]):
            for variant in ("bare_det", "aimed", "bare") if round_ == 0 else ("bare_det", "aimed"):
                if variant == "aimed":
                    shutil.rmtree(project / "state", ignore_errors=True)
                    shutil.rmtree(project / "results", ignore_errors=True)
                    r = common.run_worker("common", "fit_aimed", project=str(project), run="bench-tf", epochs=p["epochs"])
                else:
                    r = common.run_worker("common", "fit_raw", project=str(project), run="bench-tf", epochs=p["epochs"],
                                          deterministic=variant == "bare_det")
                    info = {k: r[k] for k in ("n_train", "n_val", "batch_size")}
                times[variant] += r["epoch_times"][1:]
                if variant in cpu:
                    cpu[variant] += r["epoch_cpu"][1:]
                common.log(f"  round {round_ + 1} {variant}: epochs " + ", ".join(f"{t:.2f}" for t in r["epoch_times"])
                           + " s (first left out)")
    med = {k: common.summary(v)["median"] for k, v in times.items()}
    overhead = common.ratio(med["aimed"], med["bare_det"])
    return {
        "name": "training_overhead",
        "title": "1. Training overhead (aimed train vs bare Keras, tf.data example)",
        "method": __doc__.split("\n\n", 1)[1].strip(),
        "setup": info,
        "measurements": [
            common.measurement("bare Keras + op determinism, per epoch (baseline)", times["bare_det"], "s"),
            common.measurement("aimed train, per epoch", times["aimed"], "s",
                               ratio=overhead),
            common.measurement("bare Keras without op determinism, per epoch", times["bare"], "s",
                               ratio=common.ratio(med["bare"], med["bare_det"])),
            common.measurement("bare Keras + op determinism, process CPU time per epoch", cpu["bare_det"], "s"),
            common.measurement("aimed train, process CPU time per epoch", cpu["aimed"], "s",
                               ratio=common.ratio(common.summary(cpu["aimed"])["median"],
                                                  common.summary(cpu["bare_det"])["median"])),
        ],
        "goals": [common.goal("aimed per-epoch time / bare Keras with the run's op determinism <= 1.05", overhead,
                              "<=", GOAL, f"{overhead:.3f}x ({med['aimed']:.2f} s vs {med['bare_det']:.2f} s; "
                              f"bare Keras without determinism {med['bare']:.2f} s)")],
        "epoch_medians": med,
    }


if __name__ == "__main__":
    common.worker_main("bench.training_overhead")
