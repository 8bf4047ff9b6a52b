"""Shared helpers of the benchmarks: datasets, project copies, processes, timing, results.

Every benchmark module (``bench/<name>.py``) has ``run(quick) -> dict`` and may define worker
functions that run in fresh processes (``python -m bench.<name> --worker NAME ARGS RESULT``),
because TensorFlow's global settings (op determinism, thread pools) and its start-up must not
leak from one measurement into the next. ``main()`` is the command line of every module.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import pathlib
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence

import yaml

from aimed.config import deep_merge

REPO = pathlib.Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
CACHE = BENCH / ".cache"
WHEELS = CACHE / "wheels"
PYTHON = sys.executable
BIN_DIR = pathlib.Path(PYTHON).parent
PREPARE = REPO / "workflow" / "scripts" / "prepare_mnist.py"

#: What a project needs to run the workflow (as tests/conftest.py copies it).
PROJECT_ITEMS = ("Snakefile", "workflow", "config", "runs", "src", "data", "profiles")
_COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".snakemake", ".pytest_cache")

#: Split sizes of the full MNIST (train, validation, test), as prepare_mnist.py --full writes them.
FULL_SIZES = {"train": 50000, "validation": 10000, "test": 10000}

#: Forward FLOPs per sample of the example MLP: Dense(784->512) + Dense(512->10), 2 FLOPs per MAC.
MLP_FORWARD_FLOPS = 2 * (784 * 512 + 512 * 10)

#: Dataset sizes used by the benchmarks (first N images of each split of the full MNIST).
SIZES_20K = dict(train=20000, validation=2000, test=2000)
SIZES_10K = dict(train=10000, validation=1000, test=1000)
SIZES_QUICK = dict(train=1000, validation=200, test=200)


# ----------------------------------------------------------------------------- environment

def bench_env(**extra: str) -> Dict[str, str]:
    """Environment of every process a benchmark starts: quiet TF, no telemetry, this venv first."""
    env = dict(os.environ)
    env.update({
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DVC_NO_ANALYTICS": "1",
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p),
        "PATH": os.pathsep.join(p for p in (str(BIN_DIR), env.get("PATH", "")) if p),
    })
    env.update(extra)
    return env


def load_average() -> List[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine_info() -> Dict[str, Any]:
    """CPU model, cores, RAM, Python and library versions, date."""
    cpu = "unknown"
    flags = ""
    with contextlib.suppress(OSError):
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu == "unknown":
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = line.split(":", 1)[1]
    ram_gb = None
    with contextlib.suppress(OSError, ValueError):
        for line in pathlib.Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    versions = {}
    for package in ("tensorflow", "keras", "numpy", "snakemake", "dvc", "mlflow"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions[package] = version(package if package != "tensorflow" else "tensorflow-cpu")
        if package == "tensorflow" and package not in versions:
            with contextlib.suppress(Exception):
                from importlib.metadata import version

                versions[package] = version("tensorflow")
    return {
        "cpu": cpu,
        "simd": " ".join(f for f in ("avx2", "avx512f", "fma") if f" {f}" in f" {flags}"),
        "cores": os.cpu_count(),
        "ram_gb": ram_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "load_average": load_average(),
    }


# ----------------------------------------------------------------------------- statistics, results

def summary(values: Sequence[float]) -> Dict[str, Any]:
    values = [float(v) for v in values]
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values),
            "values": [round(v, 6) for v in values]}


def measurement(label: str, values: Sequence[float], unit: str, **extra: Any) -> Dict[str, Any]:
    """A named measurement: the median (and spread) of its repeats."""
    return {"label": label, "unit": unit, **summary(values), **extra}


def single(label: str, value: Optional[float], unit: str, **extra: Any) -> Dict[str, Any]:
    """A derived figure (a ratio, a fraction): no repeats of its own."""
    return {"label": label, "unit": unit, "median": value, "n": None, **extra}


def goal(text: str, value: Optional[float], op: str, target: float, figure: str, note: str = "") -> Dict[str, Any]:
    """A goal with its figure; ``met`` is None when the figure is not available."""
    if value is None:
        met = None
    else:
        met = {"<=": value <= target, "<": value < target, ">=": value >= target, ">": value > target}[op]
    return {"goal": text, "value": value, "op": op, "target": target, "figure": figure, "met": met, "note": note}


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return None if a is None or b in (None, 0) else a / b


def timed(func: Callable[[], Any]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


# ----------------------------------------------------------------------------- processes

def measure_process(cmd: Sequence[str], cwd: pathlib.Path = REPO, env: Optional[Mapping[str, str]] = None,
                    timeout: float = 1800, check: bool = True) -> Dict[str, Any]:
    """Run ``cmd``; return wall time, its own peak RSS (``os.wait4``), exit code and output."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(list(map(str, cmd)), cwd=cwd, env=dict(env or bench_env()), stdout=out,
                                stderr=subprocess.STDOUT)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.005)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    result = {"wall": wall, "maxrss_mb": usage.ru_maxrss / 1024, "rc": proc.returncode, "output": text}
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} (in {cwd}) exited with {proc.returncode}:\n{text[-6000:]}")
    return result


def run_worker(module: str, name: str, timeout: float = 1800, env: Optional[Mapping[str, str]] = None,
               **kwargs: Any) -> Dict[str, Any]:
    """Call ``bench.<module>.<name>(**kwargs)`` in a fresh Python process; return its JSON result.

    The result carries ``_wall`` and ``_maxrss_mb`` of the worker process.
    """
    with tempfile.TemporaryDirectory(prefix="aimed-bench-") as tmp:
        result_path = pathlib.Path(tmp) / "result.json"
        proc = measure_process([PYTHON, "-m", f"bench.{module}", "--worker", name, json.dumps(kwargs),
                                str(result_path)], env=env, timeout=timeout)
        result = json.loads(result_path.read_text())
    progress = [line for line in proc["output"].splitlines() if line.startswith("  ")]
    if progress:
        print("\n".join(progress), flush=True)
    result["_wall"] = proc["wall"]
    result["_maxrss_mb"] = proc["maxrss_mb"]
    return result


def peak_rss_mb() -> float:
    """Peak RSS of this process so far (MB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class RssSampler:
    """Samples this process's RSS every ``interval`` seconds in a thread (psutil); ``.peak`` in MB."""

    def __init__(self, interval: float = 0.05) -> None:
        import psutil

        self._process = psutil.Process()
        self.interval = interval
        self.peak = self.start = self._process.memory_info().rss / 2**20
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self._process.memory_info().rss / 2**20)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss / 2**20)


# ----------------------------------------------------------------------------- datasets

def _complete(path: pathlib.Path, sizes: Mapping[str, int]) -> bool:
    for split, n in sizes.items():
        labels = path / split / "labels.csv"
        if not labels.is_file():
            return False
        with open(labels, "rb") as f:
            if sum(1 for _ in f) - 1 != n:
                return False
    return True


def dataset(train: Optional[int] = None, validation: Optional[int] = None, test: Optional[int] = None) -> pathlib.Path:
    """A full-MNIST-derived dataset in the tutorial layout, built once with ``prepare_mnist.py --full``.

    Without limits: the project's ``datasets/mnist-full`` (shared with ``make mnist-full``).
    With limits (the first N images of a split): ``bench/.cache/datasets/mnist-<train>-<validation>-<test>``.
    """
    limits = {"train": train, "validation": validation, "test": test}
    sizes = {s: min(limits[s] or FULL_SIZES[s], FULL_SIZES[s]) for s in FULL_SIZES}
    if sizes == FULL_SIZES:
        path = REPO / "datasets" / "mnist-full"
    else:
        path = CACHE / "datasets" / f"mnist-{sizes['train']}-{sizes['validation']}-{sizes['test']}"
    if not _complete(path, sizes):
        cmd = [PYTHON, PREPARE, "--full", "--cache", WHEELS, "--out", path]
        cmd += [f"--limit-{s}={n}" for s, n in sizes.items() if n != FULL_SIZES[s]]
        print(f"  building dataset {path.relative_to(REPO)} ...", flush=True)
        measure_process(cmd, timeout=900)
    return path


# ----------------------------------------------------------------------------- projects

def write_run(project: pathlib.Path, name: str, base: str = "mnist-tf", **overrides: Any) -> pathlib.Path:
    """``runs/<name>/config.yaml``: the project's ``runs/<base>/config.yaml`` with ``overrides``."""
    data = yaml.safe_load((REPO / "runs" / base / "config.yaml").read_text())
    data = deep_merge(data, overrides)
    path = project / "runs" / name / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def make_project(dest: pathlib.Path, runs: Mapping[str, Mapping[str, Any]] = (),
                 datasets: Mapping[str, pathlib.Path] = ()) -> pathlib.Path:
    """A copy of the project's workflow files in ``dest``, plus ``bench/components.py`` in ``src/``.

    ``runs`` maps new run names to ``write_run`` keyword arguments (``base`` and config overrides);
    ``datasets`` maps ``datasets/<name>`` links to dataset folders.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for item in PROJECT_ITEMS:
        src = REPO / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=_COPY_IGNORE)
        else:
            shutil.copy2(src, dest / item)
    shutil.copy2(BENCH / "components.py", dest / "src" / "bench_components.py")
    for name, spec in dict(runs).items():
        write_run(dest, name, **spec)
    for name, target in dict(datasets).items():
        link = dest / "datasets" / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target, target_is_directory=True)
    return dest


def run_context(project: pathlib.Path, run: str):
    """The aimed RunContext of ``run`` in ``project`` (and ``project`` as the working directory)."""
    from aimed.run import resolve_run

    os.chdir(project)
    return resolve_run(run, project)


def aimed_stage(project: pathlib.Path, *args: str, timeout: float = 3600) -> Dict[str, Any]:
    """``aimed ARGS`` in ``project`` as its own process: wall time and peak RSS."""
    return measure_process([BIN_DIR / "aimed", *args], cwd=project, timeout=timeout)


#: The five stages as CLI argument lists, in pipeline order.
STAGE_COMMANDS = (
    ("validate-data", ("validate-data",)),
    ("check-preprocessing", ("check-preprocessing",)),
    ("train", ("train",)),
    ("export", ("export",)),
    ("evaluate validation", ("evaluate", "--split", "validation")),
    ("evaluate test", ("evaluate", "--split", "test")),
)


def run_stages(project: pathlib.Path, run: str, stages: Iterable[str] = (), log=print) -> Dict[str, Dict[str, float]]:
    """Run the stages of ``run`` (all, or the labels in ``stages``) one process each: wall and peak RSS."""
    wanted = set(stages)
    out = {}
    for label, args in STAGE_COMMANDS:
        if wanted and label not in wanted:
            continue
        result = aimed_stage(project, *args[:1], run, *args[1:])
        out[label] = {"wall": result["wall"], "maxrss_mb": result["maxrss_mb"]}
        log(f"  {label}: {result['wall']:.1f} s, peak RSS {result['maxrss_mb']:.0f} MB")
    return out


# ----------------------------------------------------------------------------- training workers

def _epoch_clock():
    import keras

    class EpochClock(keras.callbacks.Callback):
        """perf_counter and process CPU time at the start of fit and at every epoch end."""

        def __init__(self) -> None:
            super().__init__()
            self.marks: List[float] = []
            self.cpu: List[float] = []

        def on_train_begin(self, logs=None):
            self.marks, self.cpu = [time.perf_counter()], [time.process_time()]

        def on_epoch_end(self, epoch, logs=None):
            self.marks.append(time.perf_counter())
            self.cpu.append(time.process_time())

    return EpochClock()


def _diffs(marks: Sequence[float]) -> List[float]:
    return [b - a for a, b in zip(marks, marks[1:])]


def fit_raw(project: str, run: str, epochs: int, deterministic: bool = False, validation: bool = True) -> Dict[str, Any]:
    """A bare Keras script: the run's components build the model and the batches, one ``fit`` call.

    No aimed training code runs: no per-epoch pipeline rebuild, checkpoint, history or tracking.
    Returns every epoch's wall time (epoch 1 includes tracing and is reported apart).
    """
    ctx = run_context(pathlib.Path(project), run)
    import keras
    import tensorflow as tf

    if deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(ctx.config.seed)
    loader, preprocessor = ctx.data_loader(), ctx.preprocessor()
    model = ctx.model_builder().get_compiled_model()
    source, n = loader.create_training_generator()
    train, n_iter = preprocessor.add_preprocess(source, n)
    kwargs = {}
    if validation:
        val_source, n_val = loader.create_validation_generator()
        val, val_iter = preprocessor.add_preprocess(val_source, n_val)
        kwargs = {"validation_data": val, "validation_steps": val_iter}
    clock = _epoch_clock()
    model.fit(train, steps_per_epoch=n_iter, epochs=epochs, callbacks=[clock], verbose=0, **kwargs)
    times = _diffs(clock.marks)
    return {"epoch_times": times, "epoch_cpu": _diffs(clock.cpu), "n_train": n, "n_val": kwargs and n_val or 0,
            "batch_size": ctx.config.batch_size,
            "deterministic": deterministic}


class _LineClock:
    """A stdout wrapper that timestamps each line starting with ``prefix`` (aimed's per-epoch line)."""

    def __init__(self, stream, prefix: str = "epoch ") -> None:
        self.stream, self.prefix, self.marks, self.cpu, self._at_line_start = stream, prefix, [], [], True

    def write(self, text: str) -> int:
        if self._at_line_start and text.startswith(self.prefix):
            self.marks.append(time.perf_counter())
            self.cpu.append(time.process_time())
        if text:
            self._at_line_start = text.endswith("\n")
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def fit_aimed(project: str, run: str, epochs: int) -> Dict[str, Any]:
    """aimed's train stage in this process (``aimed.stages.train.run``), timed per epoch.

    Epoch k's time is between aimed's ``epoch k-1`` and ``epoch k`` lines, which it prints after
    committing the checkpoint and logging TensorBoard and MLflow (``training.verbose: 2``), so it
    covers training, the checkpoint commit, history and tracking. Epoch 1 is timed from the
    call's start (it includes set-up) and reported apart.
    """
    ctx = run_context(pathlib.Path(project), run)
    import logging

    logging.basicConfig(level=logging.WARNING)
    from aimed.stages import train

    if ctx.config.epochs != epochs:
        raise ValueError(f"run {run} has epochs={ctx.config.epochs}, expected {epochs}")
    clock = _LineClock(sys.stdout)
    start, start_cpu = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(clock):
        train.run(ctx)
    done = time.perf_counter()
    if len(clock.marks) != epochs:
        raise RuntimeError(f"expected {epochs} 'epoch ' lines from aimed train (training.verbose: 2), got {len(clock.marks)}")
    times = _diffs([start] + clock.marks)
    return {"epoch_times": times, "epoch_cpu": _diffs([start_cpu] + clock.cpu), "publish_s": done - clock.marks[-1]}


# ----------------------------------------------------------------------------- command line

def worker_main(module_name: str, argv: Optional[List[str]] = None) -> None:
    """The command line of a benchmark module: ``--worker NAME ARGS RESULT`` or a standalone run."""
    parser = argparse.ArgumentParser(prog=f"python -m {module_name}")
    parser.add_argument("--worker", nargs=3, metavar=("NAME", "ARGS_JSON", "RESULT_PATH"))
    parser.add_argument("--quick", action="store_true", help="fewer, smaller repeats (to check the benchmark works)")
    parser.add_argument("--out", type=pathlib.Path, help="write the result JSON here")
    args = parser.parse_args(argv)
    module = importlib.import_module(module_name)
    if args.worker:
        name, kwargs, result_path = args.worker
        func = getattr(module, name, None) or globals()[name]
        result = func(**json.loads(kwargs))
        pathlib.Path(result_path).write_text(json.dumps(result))
        return
    start = time.perf_counter()
    load_before = load_average()
    result = module.run(quick=args.quick)
    result.update(wall_s=time.perf_counter() - start, load_before=load_before, load_after=load_average(),
                  quick=args.quick)
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text)
    else:
        print(text)


def log(message: str) -> None:
    print(message, flush=True)


if __name__ == "__main__":
    worker_main("bench.common")
