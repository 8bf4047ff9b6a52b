"""The cross-host training lock (``aimed.training.lock``), with real processes and real files.

A holder "on another host" is a lock file naming another host, as a process on a cluster node
would leave it on the shared file system.
"""

from __future__ import annotations

import json
import os
import pathlib
import secrets
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
from conftest import REPO_ROOT

from aimed.errors import StageFailed
from aimed.training.lock import train_lock

OTHER_HOST = "other-node-17"

RACE_CHILD = """
import pathlib, sys, time
start, lock, ready = map(pathlib.Path, sys.argv[1:4])
from aimed.errors import StageFailed
from aimed.training.lock import train_lock
ready.touch()
while not start.exists():
    time.sleep(0.0005)
try:
    with train_lock(lock, "race"):
        print("WON", flush=True)
        time.sleep(0.5)
except StageFailed as exc:
    print("REFUSED", exc, flush=True)
"""

HOLD_CHILD = """
import pathlib, socket, sys, time
if len(sys.argv) > 2:
    socket.gethostname = lambda: sys.argv[2]  # plays a process on another node
from aimed.training.lock import train_lock
with train_lock(pathlib.Path(sys.argv[1]), "held"):
    print("HELD", flush=True)
    time.sleep(60)
"""

TRY_CHILD = """
import pathlib, sys
from aimed.errors import StageFailed
from aimed.training.lock import train_lock
try:
    with train_lock(pathlib.Path(sys.argv[1]), "try"):
        print("WON", flush=True)
except StageFailed as exc:
    print("REFUSED", exc, flush=True)
"""


@pytest.fixture(autouse=True)
def _no_slurm(monkeypatch: pytest.MonkeyPatch) -> None:
    # The tests may themselves run inside a SLURM job; its id must not leak into the locks.
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SLURM_JOB_ID"}
    env.update(PYTHONPATH=str(REPO_ROOT), **extra)
    return env


def _child(code: str, *args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], env=_env(**env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _foreign(path: pathlib.Path, host: str = OTHER_HOST, pid: int | None = None, expires_in: float = 100.0,
             slurm_job: str | None = None) -> dict[str, Any]:
    """Write the lock of another holder, as that holder's aimed would have."""
    now = time.time()
    record = {"pid": _dead_pid() if pid is None else pid, "host": host, "slurm_job": slurm_job,
              "token": secrets.token_hex(16), "started": now - 600, "renewed": now - 5, "expires": now + expires_in}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return record


def _refused(lock: pathlib.Path, run: str = "r", lease: float = 5.0) -> str:
    """The message of ``train_lock``'s refusal."""
    with pytest.raises(StageFailed) as info, train_lock(lock, run, lease_seconds=lease):
        pass
    return str(info.value)


def _holder(path: pathlib.Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def test_race_exactly_one_of_eight_takes_over_a_stale_lock(tmp_path: pathlib.Path) -> None:
    began = time.monotonic()
    for round_ in range(20):
        folder = tmp_path / f"round{round_}"
        lock = folder / "state" / "train.lock"
        _foreign(lock, expires_in=-30)
        start = folder / "start"
        ready = [folder / f"ready{i}" for i in range(8)]
        procs = [_child(RACE_CHILD, start, lock, r) for r in ready]
        while not all(r.exists() for r in ready):
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            time.sleep(0.005)
        start.touch()
        results = [p.communicate(timeout=30) for p in procs]
        outs = [out.strip() for out, _ in results]
        assert [err for _, err in results] == [""] * 8, f"round {round_}: a process crashed"
        assert [p.returncode for p in procs] == [0] * 8
        assert sum(out == "WON" for out in outs) == 1, f"round {round_}: {outs}"
        refused = [out for out in outs if out != "WON"]
        assert all(out.startswith("REFUSED run 'race' is already training") for out in refused), refused
        assert not any(OTHER_HOST in out for out in refused)  # refused by the new holder, not the stale one
        assert not lock.exists()
    elapsed = time.monotonic() - began
    print(f"race: 20 rounds x 8 processes in {elapsed:.1f} s")
    assert elapsed < 90


def test_expired_lock_of_another_host_is_taken_over(tmp_path: pathlib.Path) -> None:
    lock = tmp_path / "state" / "train.lock"
    stale = _foreign(lock, expires_in=-1)
    # A guard left by a contender killed inside a takeover does not block the next one.
    leftover = lock.with_name(f"train.lock.takeover.{stale['token']}.0")
    leftover.touch()
    os.utime(leftover, (time.time() - 60, time.time() - 60))
    with train_lock(lock, "r", lease_seconds=5) as lease:
        mine = _holder(lock)
        assert mine["token"] != stale["token"] and mine["pid"] == os.getpid() and not lease.lost
    assert not lock.parent.exists()  # lock, guards and folder are gone


def test_live_lock_of_another_host_is_refused_with_who_since_and_expiry(tmp_path: pathlib.Path) -> None:
    lock = tmp_path / "state" / "train.lock"
    held = _foreign(lock, pid=4321, expires_in=90, slurm_job="777")
    message = _refused(lock, "r1")
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(held["started"]))
    expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(held["expires"]))
    for part in ("run 'r1'", str(lock), "pid 4321", f"host {OTHER_HOST}", "SLURM job 777", since, expiry,
                 "(in 9", "Wait", "delete"):
        assert part in message, (part, message)
    assert _holder(lock) == held  # untouched


def test_same_slurm_job_takes_over_a_live_lock_from_another_host(tmp_path: pathlib.Path) -> None:
    lock = tmp_path / "state" / "train.lock"
    _foreign(lock, pid=4321, expires_in=100, slurm_job="4242")
    other_job = _child(TRY_CHILD, lock, SLURM_JOB_ID="5555").communicate(timeout=30)
    assert other_job[0].startswith("REFUSED") and other_job[1] == ""
    requeued = _child(TRY_CHILD, lock, SLURM_JOB_ID="4242").communicate(timeout=30)
    assert requeued == ("WON\n", "")
    assert not lock.exists()


def test_dead_pid_on_this_host_is_taken_over_at_once(tmp_path: pathlib.Path) -> None:
    import socket

    lock = tmp_path / "state" / "train.lock"
    alive = subprocess.Popen(["sleep", "30"])
    try:
        _foreign(lock, host=socket.gethostname(), pid=alive.pid, expires_in=100)
        assert f"pid {alive.pid} on host" in _refused(lock)
    finally:
        alive.kill()
        alive.wait()
    _foreign(lock, host=socket.gethostname(), pid=alive.pid, expires_in=100)
    with train_lock(lock, "r", lease_seconds=5):
        assert _holder(lock)["pid"] == os.getpid()


def test_empty_lock_file_is_refused_while_young_and_taken_over_when_old(tmp_path: pathlib.Path) -> None:
    lock = tmp_path / "state" / "train.lock"
    lock.parent.mkdir(parents=True)
    lock.write_bytes(b"")
    message = _refused(lock, lease=30)
    assert "empty or not JSON" in message and "pid None" not in message
    assert lock.read_bytes() == b""
    os.utime(lock, (time.time() - 31, time.time() - 31))
    with train_lock(lock, "r", lease_seconds=30):
        assert _holder(lock)["pid"] == os.getpid()


def test_heartbeat_renews_the_lease_and_notices_a_takeover(tmp_path: pathlib.Path) -> None:
    lock = tmp_path / "state" / "train.lock"
    with train_lock(lock, "r", lease_seconds=2) as lease:
        first = _holder(lock)
        assert set(first) >= {"pid", "host", "slurm_job", "token", "started", "renewed", "expires"}
        assert first["expires"] == pytest.approx(first["started"] + 2, abs=0.1)
        time.sleep(1.3)
        renewed = _holder(lock)
        assert renewed["token"] == first["token"] and renewed["expires"] > first["expires"] + 0.4
        assert not lease.lost
        lease.check()
        other = _foreign(lock, host=OTHER_HOST, expires_in=100)
        deadline = time.time() + 3
        while not lease.lost and time.time() < deadline:
            time.sleep(0.05)
        assert lease.lost
        with pytest.raises(StageFailed, match="lost its training lock"):
            lease.check()
    assert _holder(lock) == other  # the other holder's lock survives our exit


def test_lock_is_released_on_exit_and_on_an_exception(tmp_path: pathlib.Path) -> None:
    lock = tmp_path / "state" / "train.lock"
    with train_lock(lock, "r", lease_seconds=5):
        assert lock.exists()
    assert not lock.parent.exists()
    with pytest.raises(RuntimeError, match="boom"), train_lock(lock, "r", lease_seconds=5):
        (lock.parent / "keep").touch()
        raise RuntimeError("boom")
    assert not lock.exists() and (lock.parent / "keep").exists()  # a folder with state stays
    with train_lock(lock, "r", lease_seconds=5):
        pass


@pytest.mark.parametrize("host", ["this", OTHER_HOST])
def test_sigkilled_holder_is_taken_over(tmp_path: pathlib.Path, host: str) -> None:
    """On this host its dead pid frees the lock at once; a holder on another node waits for its lease."""
    lock = tmp_path / "state" / "train.lock"
    holder = _child(HOLD_CHILD, lock, *([host] if host != "this" else []), AIMED_LOCK_LEASE_SECONDS="2")
    assert holder.stdout.readline() == "HELD\n"
    expires = _holder(lock)["expires"]
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    if host != "this":
        assert f"host {OTHER_HOST}" in _refused(lock)
        time.sleep(max(0.0, expires - time.time()) + 0.6)  # a renewal may have been in flight
        expires = _holder(lock)["expires"]
        time.sleep(max(0.0, expires - time.time()) + 0.1)
    with train_lock(lock, "r", lease_seconds=5):
        assert _holder(lock)["pid"] == os.getpid()
    holder.stdout.close()
    holder.stderr.close()
