"""10. Mid-epoch checkpoints: the cost of one commit, and what a SIGTERM loses.

The tutorial's tf.data example (the 512-unit MLP, batch 32) on 10,000 training and 1,000
validation images of MNIST.

- cost per commit, measured directly: the run's compiled model and optimizer in this process,
  ``TrainState.commit_batch`` timed 20 times into a temp folder (weights, optimizer and metric
  variables to ``.npz``, its sha256, ``previous.json`` and ``state.json``, each renamed into place);
- cost per commit, in training: ``aimed.stages.train.run`` with ``training.checkpoint_every: 10``
  (a commit every 10 batches) against ``checkpoint_every: null`` (epoch ends only), in fresh
  processes, alternating; the ratio of their per-epoch times (first epoch left out);
- SIGTERM: ``aimed train`` with the default ``checkpoint_every`` (10 min, so no commit falls
  inside these epochs by itself) gets SIGTERM 40% into its third epoch; the time to its exit
  (finishing the batch in progress, committing, releasing the lock, closing the MLflow run) and
  the position it committed. SLURM sends SIGKILL ``KillWait`` (default 30 s) after SIGTERM.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import signal
import statistics
import subprocess
import tempfile
import time

from bench import common

FULL = dict(epochs=3, rounds=2, sizes=common.SIZES_10K, commits=20)
QUICK = dict(epochs=2, rounds=1, sizes=common.SIZES_QUICK, commits=5)
EVERY = 10
SIGTERM_EPOCHS = 5
KILL_WAIT_S = 30.0
DEFAULT_INTERVAL_S = 600.0


def make(tmp: pathlib.Path, epochs: int, sizes: dict) -> pathlib.Path:
    data = common.dataset(**sizes)
    runs = {name: dict(base="mnist-tf", data_dir=str(data), epochs=epochs if name != "default" else SIGTERM_EPOCHS,
                       training={"verbose": 2, "checkpoint_every": every}, mlflow={"enabled": False})
            for name, every in (("no-commits", None), ("commits", EVERY), ("default", "10min"))}
    return common.make_project(tmp / "project", runs=runs)


def commit_cost(project: str, run: str, commits: int) -> dict:
    """Worker: time ``commit_batch`` on the run's compiled model; bytes per commit."""
    ctx = common.run_context(pathlib.Path(project), run)
    from aimed.data import batched_split
    from aimed.training.loop import logged_metric_names
    from aimed.training.state import TrainState

    model = ctx.model_builder().get_compiled_model()
    batches, _, _ = batched_split(ctx.data_loader(), None, ctx.preprocessor(), "validation")
    logged_metric_names(model, batches)  # builds the metric variables, as training does
    model.optimizer.build(model.trainable_variables)
    with tempfile.TemporaryDirectory(prefix="bench-commit-") as tmp:
        state = TrainState(pathlib.Path(tmp))
        state.start("bench", {})
        times = []
        for batch in range(1, commits + 1):
            start = time.perf_counter()
            state.commit_batch(model, batch)
            times.append(time.perf_counter() - start)
        size = (pathlib.Path(tmp) / state.data["weights"]).stat().st_size
    return {"times": times, "bytes": size, "parameters": int(model.count_params())}


def sigterm(project: pathlib.Path, run: str) -> dict:
    """SIGTERM 40% into the third epoch of ``aimed train``; time to exit and the committed position."""
    state_file = project / "state" / run / "train" / "state.json"

    def position() -> tuple:
        try:
            data = json.loads(state_file.read_text())
        except (OSError, ValueError):
            return 0, 0
        return data["epoch"], data.get("batch", 0)

    env = common.bench_env()
    proc = subprocess.Popen([str(common.BIN_DIR / "aimed"), "train", run], cwd=project, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    commits = []
    while len(commits) < 2:
        if proc.poll() is not None:
            raise RuntimeError(f"aimed train ended before its second epoch:\n{proc.stdout.read()[-3000:]}")
        if position()[0] > len(commits):
            commits.append(time.monotonic())
        time.sleep(0.005)
    epoch_time = commits[1] - commits[0]
    time.sleep(0.4 * epoch_time)  # 40% into the third epoch
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    latency = time.monotonic() - sent
    if proc.returncode != 128 + signal.SIGTERM:
        raise RuntimeError(f"aimed train exited {proc.returncode} on SIGTERM:\n{output[-3000:]}")
    return {"latency": latency, "position": position(), "epoch_time": epoch_time}


def run(quick: bool = False) -> dict:
    p = QUICK if quick else FULL
    times = {"no-commits": [], "commits": []}
    with tempfile.TemporaryDirectory(prefix="bench-checkpoints-") as tmp:
        project = make(pathlib.Path(tmp), p["epochs"], p["sizes"])
        direct = common.run_worker("checkpoints", "commit_cost", project=str(project), run="commits",
                                   commits=p["commits"])
        for _ in range(p["rounds"]):
            for variant in times:
                shutil.rmtree(project / "state", ignore_errors=True)
                result = common.run_worker("common", "fit_aimed", project=str(project), run=variant,
                                           epochs=p["epochs"])
                times[variant] += result["epoch_times"][1:]
        stop = sigterm(project, "default")
    n_train = p["sizes"]["train"]
    batches = -(-n_train // 32)
    commits_per_epoch = (batches - 1) // EVERY
    t_plain, t_commits = statistics.median(times["no-commits"]), statistics.median(times["commits"])
    per_commit_training = (t_commits - t_plain) / commits_per_epoch
    per_commit = statistics.median(direct["times"])
    epoch_ratio = common.ratio(t_commits, t_plain)
    return {
        "name": "checkpoints",
        "title": "10. Mid-epoch checkpoints (cost per commit, SIGTERM)",
        "method": __doc__.split("\n\n", 1)[1].strip(),
        "setup": {"train_images": n_train, "batches_per_epoch": batches, "checkpoint_every": EVERY,
                  "parameters": direct["parameters"], "commit_bytes": direct["bytes"]},
        "measurements": [
            common.measurement(f"one commit, direct ({direct['bytes'] / 1e6:.1f} MB npz)", direct["times"], "s"),
            common.measurement("epoch, checkpoint_every: null (baseline)", times["no-commits"], "s"),
            common.measurement(f"epoch, checkpoint_every: {EVERY} ({commits_per_epoch} commits)", times["commits"], "s",
                               ratio=epoch_ratio),
            common.single("SIGTERM to exit (default checkpoint_every)", stop["latency"], "s"),
        ],
        "goals": [
            common.goal("mid-epoch commits at the default checkpoint_every (10 min) cost <= 1% of the training time",
                        per_commit / DEFAULT_INTERVAL_S * 100, "<=", 1.0,
                        f"{per_commit / DEFAULT_INTERVAL_S:.4%}: {per_commit * 1000:.0f} ms per commit, measured directly "
                        f"({direct['bytes'] / 1e6:.1f} MB for {direct['parameters']:,} parameters); in training "
                        f"{per_commit_training * 1000:+.0f} ms per commit (epoch x{epoch_ratio:.3f} with a commit every "
                        f"{EVERY} of {batches} batches)"),
            common.goal(f"SIGTERM: exit with the state committed well within SLURM's KillWait ({KILL_WAIT_S:.0f} s)",
                        stop["latency"], "<=", KILL_WAIT_S / 3,
                        f"{stop['latency']:.2f} s; committed epoch {stop['position'][0]}, batch {stop['position'][1]}: "
                        f"no finished batch lost (SIGKILL without SIGTERM: up to 10 min, the default)"),
        ],
    }


if __name__ == "__main__":
    common.worker_main("bench.checkpoints")
