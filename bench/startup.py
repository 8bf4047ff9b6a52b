"""6. Start-up: ``aimed --help`` and the import cost of each stage module.

Every figure is the wall time of a fresh process (5 repeats, median). Baselines: the bare
interpreter (``python -c pass``) for ``aimed --help``, and ``import tensorflow`` for the stage
modules. A stage module imports nothing heavy at import time; each
stage imports TensorFlow (through Keras or the user's components) when it runs, so the
TensorFlow import is the start-up every stage process pays once; the table says which stage
modules pull TensorFlow, Keras or pandas in at import.
"""

from __future__ import annotations

import json

from bench import common

FULL = dict(repeats=5)
QUICK = dict(repeats=2)
HELP_GOAL = 0.5
STAGE_MODULES = ("validate_data", "check_preprocessing", "train", "export", "evaluate", "sync_mlflow")
PROBE = ("import sys, time, json; t = time.perf_counter(); import {module}; "
         "print(json.dumps({{'s': time.perf_counter() - t, 'heavy': [m for m in ('tensorflow', 'keras', 'pandas', 'mlflow') "
         "if m in sys.modules]}}))")


def import_times(module: str, n: int) -> tuple:
    times, heavy = [], []
    for _ in range(n):
        out = common.measure_process([common.PYTHON, "-c", PROBE.format(module=module)])["output"]
        probe = json.loads(out.strip().splitlines()[-1])
        times.append(probe["s"])
        heavy = probe["heavy"]
    return times, heavy


def run(quick: bool = False) -> dict:
    n = (QUICK if quick else FULL)["repeats"]
    python = [common.measure_process([common.PYTHON, "-c", "pass"])["wall"] for _ in range(n)]
    aimed_help = [common.measure_process([common.BIN_DIR / "aimed", "--help"])["wall"] for _ in range(n)]
    tf_times, _ = import_times("tensorflow", n)
    t_python = common.summary(python)["median"]
    t_help = common.summary(aimed_help)["median"]
    t_tf = common.summary(tf_times)["median"]
    measurements = [
        common.measurement("python -c pass (baseline)", python, "s"),
        common.measurement("aimed --help", aimed_help, "s", ratio=common.ratio(t_help, t_python)),
        common.measurement("import tensorflow (baseline)", tf_times, "s"),
    ]
    heavy_by_stage = {}
    for module in STAGE_MODULES:
        times, heavy = import_times(f"aimed.stages.{module}", n)
        heavy_by_stage[module] = heavy
        measurements.append(common.measurement(
            f"import aimed.stages.{module}" + (f" (pulls {', '.join(heavy)})" if heavy else ""), times, "s",
            ratio=common.ratio(common.summary(times)["median"], t_tf)))
    return {
        "name": "startup",
        "title": "6. Start-up (fresh processes)",
        "method": __doc__.split("\n\n", 1)[1].strip(),
        "setup": {"heavy_imports": heavy_by_stage},
        "measurements": measurements,
        "goals": [common.goal("aimed --help < 0.5 s", t_help, "<", HELP_GOAL,
                              f"{t_help:.2f} s (bare interpreter {t_python:.2f} s; import tensorflow {t_tf:.1f} s)")],
    }


if __name__ == "__main__":
    common.worker_main("bench.startup")
