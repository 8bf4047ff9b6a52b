"""SIGTERM and SIGINT while training: finish the batch in progress, commit, release, exit.

SLURM sends SIGTERM before SIGKILL, on preemption and at the time limit (``--signal`` moves it
earlier), with ``KillWait`` seconds (30 by default) in between. Inside the training loop a
signal only sets a flag, which :func:`aimed.training.callbacks.mid_epoch_commits` reads at the next batch boundary; a
commit there loses no finished batch. Anywhere else the signal raises at once, so the lock's
context manager releases the lock on the way out. A second signal while a stop is pending
raises at once too: whoever sends it does not want to wait for the commit.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator, Optional

from aimed.errors import Preempted

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequests:
    """Installs the handlers of :data:`STOP_SIGNALS` for its ``with`` block (main thread only)."""

    def __init__(self, run: str) -> None:
        self.run = run
        self.signum: Optional[int] = None
        self._deferring = False
        self._previous: dict = {}

    def __enter__(self) -> "StopRequests":
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in STOP_SIGNALS}
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        pending = self.signum is not None
        self.signum = signum
        if pending:
            raise self.stopped("a second time, before the batch in progress ended; the last commit is kept")
        if not self._deferring:
            raise self.stopped("outside the training loop; the last commit is kept")

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Within this block a signal waits for :meth:`raise_if_requested` at a batch boundary."""
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False

    def raise_if_requested(self, where: str) -> None:
        if self.signum is not None:
            raise self.stopped(where)

    def stopped(self, where: str) -> Preempted:
        name = signal.Signals(self.signum).name
        return Preempted(
            f"training of run '{self.run}' stopped on {name} {where}. The lock is released and the MLflow run "
            f"marked KILLED; run `aimed train {self.run}` again (or let the scheduler requeue the job) to continue "
            f"from the last commit.", self.signum)


def checkpoint_interval(setting: Any) -> tuple:
    """``training.checkpoint_every`` as ``(batches, seconds)``, one of them None (both for null).

    The schema admits a whole number of batches or a string of minutes such as ``"10min"``.
    """
    if setting is None:
        return None, None
    if isinstance(setting, int):
        return setting, None
    return None, float(str(setting).strip()[:-3]) * 60
