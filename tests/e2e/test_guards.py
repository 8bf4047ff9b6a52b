"""Training guards: a NaN loss stops training cleanly, one run trains at a time, and mirrored training works."""

from __future__ import annotations

import json
import os
import pty
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from conftest import check_aimed, run_aimed, start_tf_config_workers, update_yaml

pytestmark = pytest.mark.slow

RUN = "mnist-tf"

BOMB_BUILDER = '''


class LearningRateBombModelBuilder(ModelBuilder):
    """Test only: SGD at 0.01 for bomb_after_steps steps, then at model_builder.learning_rate."""

    def get_compiled_model(self):
        model = super().get_compiled_model()
        schedule = tfk.optimizers.schedules.PiecewiseConstantDecay(
            [self.bomb_after_steps], [0.01, self.learning_rate])
        model.compile(optimizer=tfk.optimizers.SGD(schedule), loss=tfk.losses.SparseCategoricalCrossentropy(),
                      metrics=[tfk.metrics.SparseCategoricalAccuracy()])
        return model

    def _load_params(self, config):
        super()._load_params(config)
        self.learning_rate = config.model_builder.learning_rate
        self.bomb_after_steps = config.model_builder.bomb_after_steps
'''


def read_state(project) -> dict:
    return json.loads((project / "state" / RUN / "train" / "state.json").read_text())


def test_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(train_project, shrunk, tmp_path):
    steps_per_epoch = shrunk["train"] // 16  # batch_size 16 in the training template
    project = train_project({"model_builder_class": "models.LearningRateBombModelBuilder",
                             "model_builder": {"learning_rate": 1e12, "bomb_after_steps": steps_per_epoch},
                             "mlflow": {"enabled": True, "tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"}})
    with (project / "src" / "models.py").open("a") as f:
        f.write(BOMB_BUILDER)

    proc = run_aimed(project, "train", RUN)
    assert proc.returncode == 1, proc.stderr[-3000:]
    message = proc.stderr.strip().splitlines()[-1]
    print(f"\n{message}")
    assert "loss became nan at epoch 2, batch " in message and "the last commit before that batch is kept" in message
    assert [line.split(":")[0] for line in proc.stdout.splitlines() if line.startswith("epoch ")] == ["epoch 1/5"]

    state = read_state(project)
    assert state["epoch"] == 1 and state["weights"] == "epoch-00001.npz"
    with np.load(project / "state" / RUN / "train" / state["weights"]) as saved:
        assert all(np.isfinite(saved[k]).all() for k in saved.files if saved[k].dtype.kind == "f")
    assert not (project / "results" / RUN / "train").exists()
    assert not (project / "state" / RUN / "train.lock").exists()

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.get_run(state["mlflow_run_id"])
    assert run.info.status == "FAILED"
    assert sorted(m.step for m in client.get_metric_history(run.info.run_id, "loss")) == [1]


def test_nan_guard_names_the_earliest_bad_batch_when_checks_finish_out_of_order():
    """Keras runs the guard's batch checks in a thread pool, so a later batch may be checked first."""
    import keras

    from aimed.errors import StageFailed
    from aimed.training.callbacks import nan_guard

    guard = nan_guard()
    assert guard.async_safe  # otherwise Keras would sync every step to hand it the logs
    guard.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    guard.on_train_batch_end(2, {"loss": 0.5})
    guard.on_epoch_end(0, {})  # finite losses: nothing raised
    guard.on_train_batch_end(7, {"loss": float("inf")})
    guard.on_train_batch_end(4, {"loss": float("nan")})
    guard.on_train_batch_end(9, {"loss": float("nan")})
    assert guard.model.stop_training
    with pytest.raises(StageFailed, match=r"loss became nan at epoch 3, batch 5\. .*last commit before that batch is kept"):
        guard.on_epoch_end(2, {})


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def lock_pid(lock):
    try:
        return json.loads(lock.read_text()).get("pid")
    except (OSError, ValueError):  # between the lock's creation and its content
        return None


def test_stale_lock_is_taken_over_and_a_second_train_refuses(train_project, tmp_path):
    project = train_project({"epochs": 200})
    lock = project / "state" / RUN / "train.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(json.dumps({"pid": dead_pid(), "host": socket.gethostname(), "started": time.time() - 3600}))

    with (tmp_path / "first.log").open("w") as log:
        first = subprocess.Popen(["aimed", "train", RUN], cwd=project, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while lock_pid(lock) != first.pid:
            assert first.poll() is None, (tmp_path / "first.log").read_text()[-5000:]
            assert time.monotonic() < deadline, "the first training never took over the stale lock"
            time.sleep(0.05)
        started = time.monotonic()
        second = run_aimed(project, "train", RUN, timeout=60)
        took = time.monotonic() - started
        print(f"\nsecond aimed train refused after {took:.1f} s: {second.stderr.strip().splitlines()[-1]}")
        assert first.poll() is None, "the first training ended before the second one was refused"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    assert second.returncode == 1
    assert f"run '{RUN}' is already training" in second.stderr and f"pid {first.pid}" in second.stderr
    assert took < 5, f"the second training took {took:.1f} s to refuse"
    assert not second.stdout.strip()
    assert json.loads(lock.read_text())["pid"] == first.pid  # the refused process left the lock alone


def test_mirrored_strategy_on_two_logical_cpus_trains_and_exports(train_project):
    project = train_project({"epochs": 2, "distribution": {
        "strategy": "mirrored", "logical_cpus": 2, "devices": ["/device:CPU:0", "/device:CPU:1"]}})
    proc = check_aimed(project, "train", RUN)
    assert "with MirroredStrategy on 2 replica(s)" in proc.stderr, proc.stderr[-3000:]
    check_aimed(project, "export", RUN)
    export = project / "results" / RUN / "export"
    card = json.loads((export / "model_card.json").read_text())
    history = (project / "results" / RUN / "train" / "history.csv").read_text().splitlines()
    assert len(history) == 3 and card["epochs_trained"] == 2 and card["best_epoch"] in (1, 2)
    assert (export / "savedmodel" / "saved_model.pb").is_file() and (export / "model.keras").is_file()
    assert "logical_cpus: 2" in (export / "config.yaml").read_text()
    assert os.listdir(project / "state" / RUN / "train")


def run_on_a_terminal(project, *args: str, timeout: float = 180) -> str:
    """``aimed *args`` with its stdout on a pseudo-terminal; everything it printed there."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(["aimed", *args], cwd=project, stdout=terminal, stderr=subprocess.PIPE)
    os.close(terminal)
    chunks = []

    def drain():  # a full pty buffer would block the process
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the process closed its end
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    _, stderr = proc.communicate(timeout=timeout)
    reader.join(timeout=10)
    os.close(controller)
    assert proc.returncode == 0, stderr.decode()[-3000:]
    return b"".join(chunks).decode(errors="replace")


def test_progress_bar_on_a_terminal_and_one_line_per_epoch_in_a_log(train_project):
    project = train_project({"epochs": 1})
    shown = run_on_a_terminal(project, "train", RUN)
    print(f"\n{shown[-300:]}")
    assert "━━━" in shown and "/step - loss: " in shown and "val_loss: " in shown, shown[-3000:]
    assert "epoch 1/1:" not in shown  # aimed's own line is for logs only

    update_yaml(project / "runs" / RUN / "config.yaml", {"epochs": 2})
    logged = check_aimed(project, "train", RUN).stdout
    assert [line.split(":")[0] for line in logged.splitlines() if line.startswith("epoch ")] == ["epoch 2/2"]
    assert "━" not in logged and "/step" not in logged


def test_mirrored_strategy_on_devices_that_do_not_exist_is_a_config_error(train_project):
    project = train_project({"distribution": {"strategy": "mirrored", "devices": ["/device:GPU:7"]}})
    proc = run_aimed(project, "train", RUN)
    assert proc.returncode == 2, proc.stderr[-3000:]
    message = proc.stderr.strip().splitlines()[-1]
    assert "distribution.devices" in message and "/device:GPU:7" in message and "/device:CPU:0" in message, message
    assert not (project / "state" / RUN / "train").exists()


def test_multi_worker_strategy_from_tf_config_trains_on_two_workers(train_project):
    """Two local `aimed train` processes described by TF_CONFIG (the SLURM resolver is tested in test_slurm.py)."""
    epochs = 2
    project = train_project({"epochs": epochs, "distribution": {"strategy": "multi_worker"}})
    procs, _ = start_tf_config_workers(project, RUN)
    logs = [proc.communicate(timeout=300)[0] for proc in procs]
    for proc, log in zip(procs, logs):
        assert proc.returncode == 0, log[-5000:]
        assert "with MultiWorkerMirroredStrategy on 2 replica(s)" in log or \
            "with CollectiveAllReduceStrategy on 2 replica(s)" in log, log[-5000:]
        assert [line.split(":")[0] for line in log.splitlines() if line.startswith("epoch ")] == \
            [f"epoch {k}/{epochs}" for k in range(1, epochs + 1)], log[-5000:]
    # Only the chief (worker 0) wrote the state and the results.
    state = read_state(project)
    assert state["epoch"] == epochs
    history = (project / "results" / RUN / "train" / "history.csv").read_text().splitlines()
    assert len(history) == epochs + 1
