"""The mid-epoch commit callback: when it commits (batches, minutes, a stop request) and where."""

from __future__ import annotations

import signal

import numpy as np
import pytest

from aimed.errors import Preempted
from aimed.training.callbacks import mid_epoch_commits
from aimed.training.preemption import StopRequests


def _fit(callback, batches: int = 5, epochs: int = 1) -> None:
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((batches * 4, 3), np.float32), np.zeros((batches * 4, 2), np.float32)
    model.fit(x, y, batch_size=4, epochs=epochs, callbacks=[callback], verbose=0, shuffle=False)


@pytest.mark.parametrize("every_batches,every_seconds,expected", [
    (2, None, [(0, 2), (0, 4), (1, 2), (1, 4)]),   # a commit when 2 more batches are done
    (None, 0.0, [(e, b) for e in (0, 1) for b in (1, 2, 3, 4)]),  # the clock is always due: every batch
    (None, None, []),                               # epoch ends only (the epoch commit is another callback)
])
def test_commits_fall_on_batch_boundaries_by_count_or_clock(every_batches, every_seconds, expected):
    commits = []
    callback = mid_epoch_commits(lambda epoch, done: commits.append((epoch, done)) or True, StopRequests("r"),
                                 every_batches, every_seconds, first_batch=0, metric_values=None)
    _fit(callback, epochs=2)
    assert commits == expected


def test_a_resumed_epoch_counts_from_its_first_batch_and_gets_its_running_metrics_back():
    commits, seen = [], []
    values = [np.float32(6.0), np.float32(3.0)]  # the loss tracker's total and count at the commit

    def commit(epoch, done):
        commits.append((epoch, done))
        return True

    callback = mid_epoch_commits(commit, StopRequests("r"), 1, None, first_batch=3, metric_values=values)
    original = callback.on_epoch_begin

    def on_epoch_begin(epoch, logs=None):
        original(epoch, logs)
        seen.append([float(v.numpy()) for v in callback.model.metrics_variables][:2])

    callback.on_epoch_begin = on_epoch_begin
    _fit(callback, batches=2)  # the last 2 batches of an epoch of 5, resumed after 3
    assert seen == [[6.0, 3.0]]
    assert commits == [(0, 4)]  # the fit's batch 1 is batch 5 of the epoch, with 4 done before it


def test_a_pending_stop_commits_then_raises_at_the_next_batch():
    commits = []
    with StopRequests("r") as requests:
        requests.signum = signal.SIGTERM  # as the handler records it inside deferred()
        callback = mid_epoch_commits(lambda e, d: commits.append((e, d)) or True, requests, None, None, first_batch=2,
                                     metric_values=None)
        with pytest.raises(Preempted, match=r"stopped on SIGTERM at epoch 1, batch 3, after committing 2") as info:
            _fit(callback)
    assert info.value.exit_code == 143
    assert commits == []  # nothing trained since the commit it resumed from


def test_a_commit_that_did_not_happen_is_not_reported_as_one():
    """A commit declined (a running loss that is not finite) is retried, and a stop names the last real one."""
    tried = []
    with StopRequests("r") as requests:
        def commit(epoch, done):
            tried.append(done)
            requests.signum = signal.SIGTERM  # the stop arrives while this commit is declined
            return False

        callback = mid_epoch_commits(commit, requests, 1, None, first_batch=0, metric_values=None)
        with pytest.raises(Preempted, match=r"at epoch 1, batch 2, after committing 0 batch"):
            _fit(callback)
    assert tried == [1]

