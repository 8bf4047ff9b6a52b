"""Callbacks aimed adds to every fit: the NaN guard, per-epoch validation, the commits."""

from __future__ import annotations

import math
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from aimed.errors import StageFailed
from aimed.training.input_pipeline import FitSources
from aimed.training.preemption import StopRequests


def nan_guard(first_batch: int = 0) -> Any:
    """Stops at the first non-finite training loss; ``first_batch`` numbers a resumed epoch's batches."""
    import keras

    class StopOnNonFiniteLoss(keras.callbacks.Callback):
        """Stops at the first batch whose loss is NaN or inf, naming the epoch and batch.

        ``async_safe`` keeps Keras dispatching batch ends to its thread pool, as it does when no
        callback watches batches; otherwise every step would wait for its logs to reach Python.
        Checks may finish out of order, so the earliest bad batch is kept and the error is raised
        at the epoch's end: Keras waits for every batch check before calling ``on_epoch_end``, and
        this callback comes first, so the bad epoch is never validated or committed.
        """

        async_safe = True

        def __init__(self) -> None:
            super().__init__()
            self._lock = threading.Lock()
            self._first_bad: Optional[Tuple[int, float]] = None

        def on_train_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is None or math.isfinite(float(loss)):
                return
            with self._lock:
                if self._first_bad is None or first_batch + batch < self._first_bad[0]:
                    self._first_bad = (first_batch + batch, float(loss))
            self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            if self._first_bad is not None:
                batch, loss = self._first_bad
                raise StageFailed(
                    f"the training loss became {loss} at epoch {epoch + 1}, batch {batch + 1}. "
                    f"Training stopped, and the last commit before that batch is kept. Lower the learning rate, "
                    f"check the data for extreme values, or clip gradients."
                )

    return StopOnNonFiniteLoss()


def validator(model: Any, sources: FitSources) -> Any:
    import keras

    class Validate(keras.callbacks.Callback):
        """Evaluates the epoch's own validation batches and adds them to the logs as ``val_*``."""

        def on_epoch_end(self, epoch, logs=None):
            results = model.evaluate(sources.validation(epoch), steps=sources.steps["validation"], verbose=0,
                                     return_dict=True)
            if logs is not None:
                logs.update({f"val_{name}": value for name, value in results.items()})

    return Validate()


def epoch_committer(end_epoch: Callable[[Dict[str, float]], None]) -> Any:
    import keras

    class CommitEpoch(keras.callbacks.Callback):
        """Commits the resume state at each epoch end; it runs last, after the user's callbacks."""

        def on_epoch_end(self, epoch, logs=None):
            end_epoch({k: float(v) for k, v in (logs or {}).items()})

    return CommitEpoch()


def mid_epoch_commits(commit: Callable[[int, int], bool], requests: StopRequests, every_batches: Optional[int],
                      every_seconds: Optional[float], first_batch: int, metric_values: Optional[List[Any]]) -> Any:
    """The callback committing inside epochs: every ``every_batches`` batches or ``every_seconds``, and on a stop.

    ``commit(epoch, batches_done)`` writes the state and says whether it did. It runs in ``on_train_batch_begin``, which
    Keras always calls synchronously, where the variables hold exactly the batches before it; so
    Keras still dispatches batch ends to its thread pool. ``first_batch`` is where a fit resumed
    from a mid-epoch commit starts its first epoch; ``metric_values`` (the committed running
    metrics) are put back there after Keras resets the metrics at the epoch's start.
    """
    import keras

    class MidEpochCommits(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self._offset = first_batch
            self._metric_values = metric_values
            self._committed = first_batch
            self._committed_at = time.monotonic()
            self._epoch = 0
            self._first_epoch = True

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch = epoch
            if self._first_epoch:  # the fit's first epoch starts at first_batch, with its committed metrics
                self._first_epoch = False
                for variable, value in zip(self.model.metrics_variables, self._metric_values or ()):
                    variable.assign(value)
            else:
                self._offset = self._committed = 0
            self._committed_at = time.monotonic()

        def on_train_batch_begin(self, batch, logs=None):
            done = self._offset + batch
            due = (requests.signum is not None
                   or (every_batches is not None and done - self._committed >= every_batches)
                   or (every_seconds is not None and time.monotonic() - self._committed_at >= every_seconds))
            if due and done > self._committed and commit(self._epoch, done):
                self._committed, self._committed_at = done, time.monotonic()
            requests.raise_if_requested(f"at epoch {self._epoch + 1}, batch {done + 1}, after committing "
                                        f"{self._committed} batch(es) of that epoch")

    return MidEpochCommits()
