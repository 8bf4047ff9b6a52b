"""SIGTERM and SIGINT commit at the next batch boundary, and a resumed run ends bitwise equal.

SLURM sends SIGTERM before SIGKILL on preemption and at the time limit. Each example run (tf.data
and plain generator) trains once without interruption and once stopped by SIGTERM three times,
each at a random batch in the middle of an epoch, resuming after each stop; the final weights,
the best model and the history must equal the uninterrupted run's. Batches of 2 give 32 batches
per epoch, and ``checkpoint_every: 5`` makes a commit every 5 batches, which the test watches to
know where the training is; the stops land between those commits.
"""

from __future__ import annotations

import json
import pathlib
import random
import re
import signal
import subprocess
import time

import pytest
from conftest import TRAIN_OVERRIDES, check_aimed
from test_resume import assert_arrays_equal, assert_same_training, npz_arrays, read_state, start_train, state_folder, wait_for

pytestmark = pytest.mark.slow

EPOCHS = TRAIN_OVERRIDES["epochs"]
BATCHES_PER_EPOCH = 32
SMALL_BATCHES = {"batch_size": 2, "training": {"checkpoint_every": 5}}
STOP_SEED = 20261206


def position(project: pathlib.Path, run: str) -> tuple:
    state = read_state(project, run)
    return int(state.get("epoch", 0)), int(state.get("batch", 0))


def stop_once(project: pathlib.Path, run: str, at: tuple, delay_s: float, log: pathlib.Path) -> dict:
    """Start ``aimed train``; once its commits reach ``at`` (epoch, batch), wait ``delay_s`` and SIGTERM it."""
    offset = log.stat().st_size if log.exists() else 0
    proc = start_train(project, run, log)
    wait_for(proc, lambda: position(project, run) >= at, f"the commit of epoch {at[0] + 1}, batch {at[1]}")
    time.sleep(delay_s)
    sent_at = position(project, run)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    output = log.read_text()[offset:]
    assert proc.returncode == 128 + signal.SIGTERM, f"exit {proc.returncode}:\n{output[-5000:]}"
    stopped_at = position(project, run)
    # Usually the stop commits at the batch boundary after the signal. A signal that lands while the
    # periodic commit of that boundary is being written finds that commit already holding every
    # finished batch, and stops there: the same position, nothing lost (seen once in a full run).
    assert stopped_at[0] == sent_at[0] and sent_at[1] <= stopped_at[1] < BATCHES_PER_EPOCH, (sent_at, stopped_at,
                                                                                          output[-3000:])
    said = re.search(r"stopped on SIGTERM at epoch (\d+), batch (\d+), after committing (\d+) batch", output)
    assert said, output[-3000:]
    assert (int(said[1]), int(said[3])) == (stopped_at[0] + 1, stopped_at[1]), (said.group(0), stopped_at)
    assert not (project / "state" / run / "train.lock").exists(), "the lock was not released"
    return {"signal_at": sent_at, "committed": stopped_at, "log": output}


@pytest.mark.parametrize("run", ["mnist-tf", "mnist-gen"])
def test_sigterm_at_random_batches_commits_and_resume_is_bitwise_identical(train_project, tmp_path, run):
    reference = train_project({**SMALL_BATCHES, "training": {"checkpoint_every": None}}, name="uninterrupted")
    check_aimed(reference, "train", run)

    rng = random.Random(f"{STOP_SEED}/{run}")
    epochs = sorted(rng.sample(range(EPOCHS - 1), 3))
    plan = [((e, 5 * rng.randint(1, 3)), round(rng.uniform(0.0, 0.05), 3)) for e in epochs]
    print(f"\n{run}: SIGTERM plan ((epoch, batch) reached, then delay s): {plan}")

    project = train_project(SMALL_BATCHES, name="stopped")
    log = tmp_path / "stopped.log"
    stops = []
    for at, delay in plan:
        report = stop_once(project, run, at, delay, log)
        stops.append(report["committed"])
        print(f"{run}: SIGTERM with commits at {report['signal_at']} -> committed {report['committed']}")
    offset = log.stat().st_size
    with log.open("a") as out:
        finished = subprocess.run(["aimed", "train", run], cwd=project, stdout=out, stderr=subprocess.STDOUT)
    assert finished.returncode == 0, log.read_text()[-5000:]

    # Each attempt after a stop starts at the batch after the one committed.
    resumed = [(int(e), int(b)) for e, b in re.findall(r"resuming run '[^']+' at epoch (\d+) of \d+, batch (\d+)",
                                                       log.read_text())]
    assert resumed == [(e + 1, b + 1) for e, b in stops], (resumed, stops)
    assert log.read_text()[offset:].count("resuming run") == 1
    assert_same_training(project, reference, run)


def _flip_a_byte(path: pathlib.Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _lower_the_epoch(path: pathlib.Path) -> None:
    path.write_text(json.dumps(dict(json.loads(path.read_text()), epoch=2)))


def test_each_damaged_file_is_named_and_from_previous_recovers_bitwise(train_project):
    """The issue's damage, through the CLI: a lowered epoch in state.json, then a bit flip in the
    newest weights file. Each stops `aimed train` with exit 1 naming the file and offering
    --from-previous, which retrains from the commit before and ends on the same weights."""
    run = "mnist-tf"
    project = train_project({"epochs": 3})
    check_aimed(project, "train", run)
    folder = state_folder(project, run)
    final = folder / "epoch-00003.npz"
    want = npz_arrays(final)

    for damaged, damage in ((folder / "state.json", _lower_the_epoch), (final, _flip_a_byte)):
        damage(damaged)
        refused = subprocess.run(["aimed", "train", run], cwd=project, capture_output=True, text=True)
        assert refused.returncode == 1, refused.stderr[-3000:]
        message = refused.stderr.strip().splitlines()[-1]
        assert "the resume state is damaged" in message and str(damaged) in message, message
        assert f"aimed train {run} --from-previous" in message, message

        recovered = check_aimed(project, "train", run, "--from-previous")
        assert "from its previous commit: 2 epoch(s)" in recovered.stderr + recovered.stdout
        assert_arrays_equal(npz_arrays(final), want, f"{final.name} after --from-previous ({damaged.name} damaged)")
