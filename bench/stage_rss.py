"""8. Peak RSS of each stage on the full MNIST (the mnist-full run, training shortened to 1 epoch).

Each stage runs as its own ``aimed <stage> mnist-full`` process in a copy of the project whose
``datasets/mnist-full`` is the full MNIST (70,000 JPEGs); peak RSS is the process's own
``ru_maxrss`` (``os.wait4``), wall time includes the process start-up. Every round starts from
empty results and state. Training is cut to 1 epoch (RSS does not grow with epochs: the
pipeline is rebuilt each epoch and the state is committed to disk); ``make mnist-full`` gives
the figures of the real 10-epoch run. The evaluate stage is measured on the validation split
only: the test split is the same size and reads the same way (their peaks differed by 3 MB).
One round only (a round is ~2 minutes of the 20-minute
budget; peak RSS repeats within ~1 MB between rounds), so n = 1 per stage. Baseline: a process that imports TensorFlow and Keras,
builds and compiles the same MLP and predicts one batch, the floor of every stage.
"""

from __future__ import annotations

import pathlib
import shutil
import tempfile

from bench import common

FULL = dict(rounds=1, baseline_repeats=5)
QUICK = dict(rounds=1, baseline_repeats=2)
STAGES = [label for label, _ in common.STAGE_COMMANDS if label != "evaluate test"]
FLOOR = ("import keras, numpy as np; m = keras.Sequential([keras.Input((784,)), keras.layers.Dense(512, activation='relu'), "
         "keras.layers.Dropout(0.2), keras.layers.Dense(10, activation='softmax')]); "
         "m.compile('adam', 'sparse_categorical_crossentropy'); m.predict_on_batch(np.zeros((128, 784), 'float32'))")


def run(quick: bool = False) -> dict:
    p = QUICK if quick else FULL
    data = common.dataset(**common.SIZES_QUICK) if quick else common.dataset()
    floor = [common.measure_process([common.PYTHON, "-c", FLOOR]) for _ in range(p["baseline_repeats"])]
    rounds = []
    with tempfile.TemporaryDirectory(prefix="bench-rss-") as tmp:
        tmp = pathlib.Path(tmp)
        project = common.make_project(tmp / "project", runs={"mnist-full": dict(
            base="mnist-full", epochs=1, mlflow={"tracking_uri": f"sqlite:///{tmp / 'mlflow.db'}"})},
            datasets={"mnist-full": data})
        for round_ in range(p["rounds"]):
            shutil.rmtree(project / "results", ignore_errors=True)
            shutil.rmtree(project / "state", ignore_errors=True)
            common.log(f"  round {round_ + 1}:")
            rounds.append(common.run_stages(project, "mnist-full", stages=STAGES, log=common.log))
    floor_rss = common.summary([f["maxrss_mb"] for f in floor])["median"]
    measurements = [
        common.measurement("TF + Keras + MLP floor process, peak RSS (baseline)", [f["maxrss_mb"] for f in floor], "MB",
                           wall_s=common.summary([f["wall"] for f in floor])["median"]),
    ]
    for label in rounds[0]:
        rss = [r[label]["maxrss_mb"] for r in rounds]
        measurements.append(common.measurement(f"aimed {label}, peak RSS", rss, "MB",
                                               ratio=common.ratio(common.summary(rss)["median"], floor_rss),
                                               wall_s=common.summary([r[label]["wall"] for r in rounds])["median"]))
    return {
        "name": "stage_rss",
        "title": "8. Peak RSS per stage (full MNIST)",
        "method": __doc__.split("\n\n", 1)[1].strip(),
        "setup": {"dataset": str(pathlib.Path(data).relative_to(common.REPO)), "rounds": rounds},
        "measurements": measurements,
        "goals": [],
    }


if __name__ == "__main__":
    common.worker_main("bench.stage_rss")
