"""Training survives SIGKILL at any moment, export survives it too, and the resume state follows the config.

The kill test trains each example run (tf.data and plain generator) once without interruption,
then again while SIGKILLing ``aimed train`` at three moments drawn from a seeded RNG, resuming
each time; the final weights must equal the uninterrupted run's bit for bit. The moments are
timed by watching the resume state: a kill mid-epoch (a random fraction of the measured epoch
time after an epoch boundary), one while a checkpoint is being written (as soon as a temp file
of the commit appears), and one between epochs (right after ``state.json`` advances).
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import random
import signal
import statistics
import struct
import subprocess
import time
import zipfile
from typing import Callable, Dict, List

import numpy as np
import pandas as pd
import pytest
from conftest import TRAIN_OVERRIDES, check_aimed, update_yaml

pytestmark = pytest.mark.slow

EPOCHS = TRAIN_OVERRIDES["epochs"]
KILL_SEED = 20240611
KILL_KINDS = ("mid-epoch", "checkpoint-write", "between-epochs")


# ----------------------------------------------------------------------------- helpers


def state_folder(project: pathlib.Path, run: str) -> pathlib.Path:
    return project / "state" / run / "train"


def read_state(project: pathlib.Path, run: str) -> dict:
    path = state_folder(project, run) / "state.json"
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}


def state_epoch(project: pathlib.Path, run: str) -> int:
    return int(read_state(project, run).get("epoch", 0))


def temp_files(folder: pathlib.Path) -> List[str]:
    try:
        return sorted(e.name for e in os.scandir(folder) if e.name.endswith(".tmp"))
    except FileNotFoundError:
        return []


def npz_arrays(path: pathlib.Path) -> Dict[str, np.ndarray]:
    with np.load(path) as saved:
        return {k: saved[k] for k in saved.files}


def keras_weights(path: pathlib.Path) -> Dict[str, np.ndarray]:
    """Every weight array in a ``.keras`` file (read with h5py; no TensorFlow in the test process)."""
    import h5py

    arrays: Dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as archive, h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as h5:
        h5.visititems(lambda name, obj: arrays.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return arrays


def assert_arrays_equal(got: Dict[str, np.ndarray], want: Dict[str, np.ndarray], what: str) -> None:
    assert sorted(got) == sorted(want), f"{what}: different arrays"
    different = [k for k in want if not np.array_equal(got[k], want[k])]
    assert not different, f"{what}: arrays {different} differ from the uninterrupted run"


def assert_same_training(project: pathlib.Path, reference: pathlib.Path, run: str) -> None:
    """The final checkpoint (every array), ``best_model.keras`` and ``history.csv`` equal the reference run's."""
    final = f"epoch-{EPOCHS:05d}.npz"
    assert_arrays_equal(npz_arrays(state_folder(project, run) / final),
                        npz_arrays(state_folder(reference, run) / final), f"state/{run}/train/{final}")
    model = pathlib.Path("results", run, "train", "best_model.keras")
    assert_arrays_equal(keras_weights(project / model), keras_weights(reference / model), str(model))
    history = pathlib.Path("results", run, "train", "history.csv")
    assert (project / history).read_text() == (reference / history).read_text()


def tensorboard_steps(folder: pathlib.Path) -> Dict[str, List[int]]:
    """``{"<side>/<tag>": [steps in file order]}`` of every event file under ``folder``."""
    from tensorboard.compat.proto import event_pb2

    steps: Dict[str, List[int]] = {}
    for path in sorted(folder.rglob("events.out.tfevents.*")):
        data = path.read_bytes()
        offset = 0
        while offset + 12 <= len(data):
            (length,) = struct.unpack("<Q", data[offset:offset + 8])
            record = data[offset + 12:offset + 12 + length]
            offset += 12 + length + 4
            if len(record) < length:
                break
            event = event_pb2.Event.FromString(record)
            for value in event.summary.value:
                steps.setdefault(f"{path.parent.name}/{value.tag}", []).append(event.step)
    return steps


def start_train(project: pathlib.Path, run: str, log: pathlib.Path) -> subprocess.Popen:
    with log.open("a") as out:
        return subprocess.Popen(["aimed", "train", run], cwd=project, stdout=out, stderr=subprocess.STDOUT)


def wait_for(proc: subprocess.Popen, condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    """Poll ``condition`` every half millisecond while ``proc`` runs; fail if it ends first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"aimed train exited ({proc.returncode}) before {what}; the kill would not interrupt it")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.0005)


def event_files(project: pathlib.Path, run: str) -> int:
    return len(list((project / "state" / run / "tensorboard" / "train").glob("events.out.tfevents.*")))


def uninterrupted(project: pathlib.Path, run: str, log: pathlib.Path) -> float:
    """Train to the end; return the median time between epoch commits."""
    proc = start_train(project, run, log)
    commits: List[float] = []
    while proc.poll() is None:
        epoch = state_epoch(project, run)
        if epoch > len(commits):
            commits += [time.monotonic()] * (epoch - len(commits))
        time.sleep(0.001)
    assert proc.returncode == 0, log.read_text()[-5000:]
    return statistics.median(b - a for a, b in zip(commits, commits[1:]))


def kill_once(project: pathlib.Path, run: str, kind: str, epoch: int, fraction: float, epoch_time: float,
              log: pathlib.Path) -> Dict[str, object]:
    """Start ``aimed train``, SIGKILL it at the moment ``kind`` after epoch boundary ``epoch``; describe the kill."""
    folder = state_folder(project, run)
    start_epoch, files_before = state_epoch(project, run), event_files(project, run)
    assert epoch >= start_epoch
    started = time.monotonic()
    proc = start_train(project, run, log)
    seen_temp: List[str] = []
    left_before = set(temp_files(folder))
    if kind == "mid-epoch":
        if epoch == start_epoch:  # this process's first epoch: its TensorBoard writer opens just before it
            wait_for(proc, lambda: event_files(project, run) > files_before, "the training loop started")
        else:
            wait_for(proc, lambda: state_epoch(project, run) >= epoch, f"epoch {epoch} was committed")
        delay = fraction * epoch_time
        deadline = time.monotonic() + delay
        # On a machine faster now than when epoch_time was measured, epoch + 1 may end first: kill then.
        wait_for(proc, lambda: time.monotonic() >= deadline or state_epoch(project, run) > epoch,
                 f"{delay:.3f} s into epoch {epoch + 1}")
    elif kind == "checkpoint-write":
        def writing() -> bool:
            seen_temp[:] = sorted(set(temp_files(folder)) - left_before)
            return bool(seen_temp) and state_epoch(project, run) == epoch or state_epoch(project, run) > epoch
        wait_for(proc, writing, f"the checkpoint of epoch {epoch + 1} was being written")
    else:
        wait_for(proc, lambda: state_epoch(project, run) > epoch, f"epoch {epoch + 1} was committed")
    at_kill = state_epoch(project, run)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    after = state_epoch(project, run)
    report = {"kind": kind, "boundary": epoch, "after_s": round(time.monotonic() - started, 3),
              "state_epoch_at_kill": at_kill, "state_epoch_after": after, "temp_files_seen": seen_temp,
              "temp_files_left": temp_files(folder)}
    assert proc.returncode == -signal.SIGKILL, f"aimed train was not killed: {report}\n{log.read_text()[-5000:]}"
    assert after < EPOCHS, f"the kill came after training ended: {report}"
    return report


# ----------------------------------------------------------------------------- kill and resume


@pytest.mark.parametrize("run", ["mnist-tf", "mnist-gen"])
def test_sigkill_at_random_moments_then_resume_is_bitwise_identical(train_project, tmp_path, run):
    reference = train_project(name="uninterrupted")
    epoch_time = uninterrupted(reference, run, tmp_path / "uninterrupted.log")

    rng = random.Random(f"{KILL_SEED}/{run}")
    boundaries = sorted(rng.sample(range(EPOCHS - 1), len(KILL_KINDS)))
    kinds = rng.sample(KILL_KINDS, len(KILL_KINDS))
    fractions = [round(rng.uniform(0.2, 0.8), 3) for _ in kinds]
    print(f"\n{run}: median epoch time {epoch_time:.3f} s; kill plan (kind, epoch boundary, fraction of an epoch): "
          f"{list(zip(kinds, boundaries, fractions))}")

    project = train_project(name="killed")
    log = tmp_path / "killed.log"
    for kind, boundary, fraction in zip(kinds, boundaries, fractions):
        report = kill_once(project, run, kind, boundary, fraction, epoch_time, log)
        print(f"{run}: SIGKILL {report}")
    check_aimed(project, "train", run)

    assert_same_training(project, reference, run)
    final = f"epoch-{EPOCHS:05d}.npz"
    model = pathlib.Path("results", run, "train", "best_model.keras")
    print(f"{run}: all {len(npz_arrays(state_folder(project, run) / final))} checkpoint arrays and "
          f"{len(keras_weights(project / model))} best_model.keras arrays equal the uninterrupted run")

    assert temp_files(state_folder(project, run)) == []
    assert not (project / "state" / run / "train.lock").exists()
    steps = tensorboard_steps(project / "state" / run / "tensorboard")
    assert steps and all(sorted(s) == list(range(1, EPOCHS + 1)) for s in steps.values()), steps


def test_sigkill_during_export_then_rerun_completes(train_project, tmp_path):
    run = "mnist-tf"
    project = train_project({"epochs": 2})
    check_aimed(project, "train", run)
    results = project / "results" / run
    with (tmp_path / "export.log").open("w") as log:
        proc = subprocess.Popen(["aimed", "export", run], cwd=project, stdout=log, stderr=subprocess.STDOUT)
    temp = []
    wait_for(proc, lambda: bool(temp.extend(results.glob(".export.*.tmp/savedmodel")) or temp),
             "the export wrote into its temp folder")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    print(f"\nexport killed with {sorted(p.name for p in temp[0].parent.rglob('*'))} in {temp[0].parent.name}")
    assert not (results / "export" / "model_card.json").exists()

    check_aimed(project, "export", run)
    export = results / "export"
    for name in ("savedmodel/saved_model.pb", "model.keras", "model_card.json", "config.yaml"):
        assert (export / name).is_file(), name
    assert json.loads((export / "model_card.json").read_text())["run"] == run
    assert [p.name for p in results.iterdir() if p.name.startswith(".")] == []


# ----------------------------------------------------------------------------- continue or start fresh


def train_lines(proc: subprocess.CompletedProcess) -> List[str]:
    return [line.split(":")[0] for line in proc.stdout.splitlines() if line.startswith("epoch ")]


def test_raising_epochs_continues_and_other_changes_archive(train_project):
    run = "mnist-gen"
    project = train_project({"epochs": 1})
    config = project / "runs" / run / "config.yaml"
    history_path = project / "results" / run / "train" / "history.csv"
    check_aimed(project, "train", run)
    first = pd.read_csv(history_path)

    update_yaml(config, {"epochs": 2})
    proc = check_aimed(project, "train", run)
    assert train_lines(proc) == ["epoch 2/2"], "epoch 1 was trained again"
    assert "moved to" not in proc.stderr
    history = pd.read_csv(history_path)
    assert history["epoch"].tolist() == [1, 2]
    pd.testing.assert_frame_equal(history.iloc[:1], first)
    assert not list((project / "state" / run).glob("archive"))
    state = read_state(project, run)
    assert state["epoch"] == 2 and [row["epoch"] for row in state["history"]] == [1, 2]

    # Three states archived by earlier runs: the next archiving must drop the oldest of them.
    archive = project / "state" / run / "archive"
    for day in (1, 2, 3):
        (archive / f"2000010{day}T000000").mkdir(parents=True)
        (archive / f"2000010{day}T000000" / "state.json").write_text(json.dumps({"fingerprint": f"older-{day}"}))

    continued = state["fingerprint"]
    update_yaml(config, {"model_builder": {"dropout_rate": 0.3}})
    proc = check_aimed(project, "train", run)
    assert "model_builder" in proc.stderr and "moved to" in proc.stderr, proc.stderr[-3000:]
    assert train_lines(proc) == ["epoch 1/2", "epoch 2/2"], "a changed config must start fresh"
    state = read_state(project, run)
    assert state["epoch"] == 2 and state["fingerprint"] != continued
    steps = tensorboard_steps(project / "state" / run / "tensorboard")
    assert steps and all(s == [1, 2] for s in steps.values()), f"steps restarted in one TensorBoard log: {steps}"

    archives = sorted(archive.iterdir())
    print(f"\narchives: {[a.name for a in archives]}")
    kept = [json.loads((a / "state.json").read_text())["fingerprint"] for a in archives]
    assert kept == ["older-2", "older-3", continued], "the archive must keep the last 3 states"
    assert read_state(project, run) and json.loads((archives[-1] / "state.json").read_text())["epoch"] == 2
    moved_logs = tensorboard_steps(archives[-1] / "tensorboard")
    assert moved_logs and all(s == [1, 2] for s in moved_logs.values()), moved_logs


#: A user's model builder with an EarlyStopping that never sees an improvement after the first epoch
#: (min_delta is huge): one epoch of patience stops the training at the end of its second epoch.
EARLY_STOPPING_BUILDER = """import keras

from models import ModelBuilder


class StoppingModelBuilder(ModelBuilder):
    def get_callbacks(self):
        return [keras.callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=1e9)]
"""


def test_a_users_early_stopping_keeps_its_patience_across_a_restart_and_a_stopped_run_stays_stopped(train_project):
    """The callback's state (EarlyStopping's best and wait) is committed with each epoch: a training
    continued in a new process stops where one uninterrupted training stops, and a training a callback
    stopped is finished: running the stage again trains nothing."""
    run = "mnist-gen"
    project = train_project({"epochs": 1, "model_builder_class": "stopping.StoppingModelBuilder"})
    (project / "src" / "stopping.py").write_text(EARLY_STOPPING_BUILDER)
    config = project / "runs" / run / "config.yaml"
    check_aimed(project, "train", run)
    saved = read_state(project, run)["callbacks"]
    assert [c["class"] for c in saved] == ["keras.src.callbacks.early_stopping.EarlyStopping"]
    assert saved[0]["state"]["wait"] == 0 and saved[0]["state"]["best"] is not None

    update_yaml(config, {"epochs": 4})
    proc = check_aimed(project, "train", run)
    # Restored, the callback counts epoch 2 as no improvement on epoch 1 and stops; fresh, it would take
    # epoch 2 as its first (best) epoch and stop only after epoch 3.
    assert train_lines(proc) == ["epoch 2/4"], proc.stdout[-3000:]
    state = read_state(project, run)
    assert state["epoch"] == 2 and state["stopped_early"] == 2

    proc = check_aimed(project, "train", run)
    assert train_lines(proc) == [], proc.stdout[-3000:]
    assert "stopped early by a callback after epoch 2" in proc.stderr
    assert pd.read_csv(project / "results" / run / "train" / "history.csv")["epoch"].tolist() == [1, 2]


def test_each_epoch_is_validated_on_its_own_batches(train_project):
    """More validation batches than the read-ahead queue holds, over many epochs in one fit.

    Keras restarts its validation iterator every epoch and peeks at a generator's first batches,
    so a validation source joined across epochs would replay or drop batches (and once hung with
    generators). The best epoch's recorded val_loss must equal the saved best model's loss on
    the validation split.
    """
    import keras

    from aimed.data import batched_split
    from aimed.run import resolve_run

    run = "mnist-gen"
    project = train_project({"epochs": 8, "batch_size": 2})
    check_aimed(project, "train", run, timeout=300)
    history = pd.read_csv(project / "results" / run / "train" / "history.csv").set_index("epoch")
    assert list(history.index) == list(range(1, 9))
    best = json.loads((project / "results" / run / "train" / "summary.json").read_text())["best"]
    ctx = resolve_run(run, project)
    model = keras.models.load_model(project / "results" / run / "train" / "best_model.keras")
    batches, _, n_iter = batched_split(ctx.data_loader(), None, ctx.preprocessor(), "validation")
    loss = model.evaluate(batches, steps=n_iter, return_dict=True, verbose=0)["loss"]
    assert loss == pytest.approx(history["val_loss"][best["epoch"]], rel=1e-5)
