"""The full-MNIST scale run (``make mnist-full``): the five stages of run ``mnist-full`` in this project.

Builds ``datasets/mnist-full`` if it is missing (``prepare_mnist.py --full``), removes the
run's previous ``results/mnist-full`` and ``state/mnist-full`` (so training starts from
scratch and the timing is of a whole run), then runs each stage as ``aimed <stage>
mnist-full``, recording its wall time and peak RSS. Writes ``bench/mnist_full.json`` and the
"Full-MNIST scale run" section of BENCHMARKS.md. Not part of ``make bench``.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from bench import common
from bench import run as bench_run

RUN = "mnist-full"


def main() -> int:
    repo = common.REPO
    common.dataset()
    for folder in (repo / "results" / RUN, repo / "state" / RUN):
        if folder.exists():
            print(f"removing {folder.relative_to(repo)} (previous run)", flush=True)
            shutil.rmtree(folder)
    load_before = common.load_average()
    start = time.perf_counter()
    stages = common.run_stages(repo, RUN, log=common.log)
    total = time.perf_counter() - start

    def summary(split):
        return json.loads((repo / "results" / RUN / "evaluate" / split / "summary.json").read_text())

    train = json.loads((repo / "results" / RUN / "train" / "summary.json").read_text())
    from aimed.config import load_config

    config = load_config(repo / "runs" / RUN / "config.yaml")
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": common.machine_info(),
        "load_before": load_before,
        "load_after": common.load_average(),
        "config": f"data_dir {config.data_dir}, {config.epochs} epochs, batch {config.batch_size}, "
                  f"{config.data_loader_class} + {config.preprocessor_class}",
        "stages": stages,
        "total_wall_s": total,
        "test_accuracy": summary("test")["classification"]["accuracy"],
        "validation_accuracy": summary("validation")["classification"]["accuracy"],
        "train": {"epochs": train["epochs"], "best_epoch": train["best"]["epoch"], "best_value": train["best"]["value"],
                  "per_epoch_s": stages["train"]["wall"] / train["epochs"]},
    }
    bench_run.MNIST_FULL.write_text(json.dumps(result, indent=1))
    bench_run.write_markdown()
    print(f"test accuracy {result['test_accuracy']:.4f}; total {total / 60:.1f} min; wrote "
          f"{bench_run.MNIST_FULL.relative_to(repo)} and BENCHMARKS.md", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
