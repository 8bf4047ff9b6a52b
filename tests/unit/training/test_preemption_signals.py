"""aimed.training.preemption: stop requests on SIGTERM/SIGINT, and the checkpoint interval setting."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from aimed.errors import AimedError, Preempted
from aimed.training.preemption import STOP_SIGNALS, StopRequests, checkpoint_interval

pytestmark = pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                                reason="signal handlers can only be installed in the main thread")


def _send(signum: int, stops: StopRequests = None) -> None:
    """Send ``signum`` to this process and give Python the chance to run its handler.

    The handler runs between bytecodes of the main thread, almost at once; with ``stops`` the
    wait ends as soon as it has recorded the signal.
    """
    os.kill(os.getpid(), signum)
    for _ in range(100):
        if stops is not None and stops.signum == signum:
            return
        time.sleep(0.01)


@pytest.mark.parametrize("setting, expected", [
    (None, (None, None)),
    (250, (250, None)),
    ("10min", (None, 600.0)),
    (" 2.5 min", (None, 150.0)),
    ("1 min ", (None, 60.0)),
])
def test_checkpoint_interval(setting, expected):
    assert checkpoint_interval(setting) == expected


def test_stop_signals_are_sigterm_and_sigint():
    assert set(STOP_SIGNALS) == {signal.SIGTERM, signal.SIGINT}


def test_handlers_are_installed_for_the_block_and_restored_after():
    before = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    with StopRequests("run-a") as stops:
        for s in STOP_SIGNALS:
            assert signal.getsignal(s) == stops._handle
            assert signal.getsignal(s) != before[s]
    assert {s: signal.getsignal(s) for s in STOP_SIGNALS} == before


def test_sigterm_outside_deferred_raises_preempted_with_exit_code_143():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Preempted) as info, StopRequests("run-a"):
        _send(signal.SIGTERM)
        pytest.fail("SIGTERM did not raise")  # pragma: no cover
    assert isinstance(info.value, AimedError)
    assert info.value.exit_code == 143
    assert "SIGTERM" in str(info.value) and "run-a" in str(info.value)
    assert "aimed train run-a" in str(info.value)
    assert signal.getsignal(signal.SIGTERM) == before  # restored on the way out


def test_sigint_outside_deferred_raises_with_exit_code_130():
    with pytest.raises(Preempted) as info, StopRequests("run-b"):
        _send(signal.SIGINT)
    assert info.value.exit_code == 130
    assert "SIGINT" in str(info.value)


def test_signal_inside_deferred_is_recorded_and_raised_at_the_batch_boundary():
    with StopRequests("run-c") as stops:
        stops.raise_if_requested("nothing requested")  # no signal yet: no error
        with stops.deferred():
            _send(signal.SIGTERM, stops)
            assert stops.signum == signal.SIGTERM  # recorded, training goes on
        with pytest.raises(Preempted) as info:
            stops.raise_if_requested("at the end of batch 7")
    assert info.value.exit_code == 143
    assert "at the end of batch 7" in str(info.value)


def test_second_signal_inside_deferred_raises_at_once():
    with pytest.raises(Preempted) as info, StopRequests("run-d") as stops, stops.deferred():
        _send(signal.SIGTERM, stops)
        assert stops.signum == signal.SIGTERM
        _send(signal.SIGINT)
        pytest.fail("the second signal did not raise")  # pragma: no cover
    assert info.value.exit_code == 130  # the second signal is the one reported
    assert "second time" in str(info.value)


def test_deferred_ends_with_its_block_even_on_an_error():
    with pytest.raises(Preempted), StopRequests("run-e") as stops:
        with pytest.raises(ValueError), stops.deferred():
            raise ValueError("inside")
        _send(signal.SIGTERM)  # deferral is over: raises at once
