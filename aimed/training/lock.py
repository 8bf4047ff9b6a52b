"""The training lock: a lease in a JSON file, renewed by a heartbeat, valid across the hosts of a cluster.

A lock is created only by ``os.link`` of a complete temp file, so it never exists half-written.
Once in place, a lock file is changed or removed only by a process holding a *guard* for it: a
file ``<lock>.takeover.<key>.<level>`` created with ``O_EXCL``, where ``key`` names that one lock
(its holder's random token). The guard holder re-reads the lock and acts only if it is still the
same lock in the same condition. So a lock is removed at most once, and of N contenders taking
over a stale lock only the one whose ``os.link`` succeeds holds it. A guard left by a killed
process is skipped, not deleted, once stale (the next level is used): two processes deleting it
at once could otherwise both think they hold the guard.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from aimed._io import atomic_write_json
from aimed.errors import StageFailed

#: Seconds a holder that stopped renewing (killed, preempted, its host down) keeps the lock.
LEASE_SECONDS = float(os.environ.get("AIMED_LOCK_LEASE_SECONDS", "120"))
#: A guard is held for milliseconds; one this old was left by a process killed inside a takeover.
GUARD_STALE_SECONDS = 10.0


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read(path: pathlib.Path, lease: float) -> dict[str, Any] | None:
    """The lock's record with its ``_key`` and ``_mtime``; None if there is no lock file."""
    try:
        with open(path, "rb") as f:
            raw, stat = f.read(), os.fstat(f.fileno())
    except FileNotFoundError:
        return None
    try:
        record = json.loads(raw)
    except ValueError:
        record = None
    record = record if isinstance(record, dict) else {}
    token = record.get("token")
    # A file aimed did not write (empty, not JSON, an older aimed) has no lease: its age is the lease.
    if not isinstance(record.get("expires"), (int, float)) or not isinstance(token, str):
        record["expires"] = stat.st_mtime + lease
    record["_key"] = token if isinstance(token, str) and re.fullmatch(r"[0-9a-f]{32}", token) else f"i{stat.st_ino}"
    record["_mtime"] = stat.st_mtime
    return record


def _stale(holder: dict[str, Any], me: dict[str, Any]) -> bool:
    """Whether the holder may be taken over now: lease expired, dead on this host, or our SLURM job requeued."""
    here = holder.get("host") == me["host"]
    if holder["expires"] < time.time() or (here and not _pid_alive(holder.get("pid"))):
        return True
    # A live process of the same job on this host is a second training inside one allocation, not a requeue.
    return me["slurm_job"] is not None and holder.get("slurm_job") == me["slurm_job"] and not here


def _link(path: pathlib.Path, record: dict[str, Any]) -> bool:
    """Create the lock holding ``record``, atomically; False if a lock exists."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        tmp.write_text(json.dumps(record))
    except FileNotFoundError:  # A holder's release removed the empty folder just now.
        path.parent.mkdir(parents=True, exist_ok=True)
        return False
    try:
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
        # NFS may report a retried, successful link as EEXIST; the link count tells the truth (open(2)).
        return os.stat(tmp).st_nlink == 2
    finally:
        tmp.unlink(missing_ok=True)


def _guard(path: pathlib.Path, key: str) -> pathlib.Path | None:
    """The right to change the lock named ``key``; None while another process holds it."""
    level = 0
    while True:
        guard = path.with_name(f"{path.name}.takeover.{key}.{level}")
        try:
            os.close(os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            return guard
        except FileExistsError:
            pass
        except FileNotFoundError:
            return None  # The folder went with the lock: nothing left to guard.
        try:
            if time.time() - guard.stat().st_mtime < GUARD_STALE_SECONDS:
                return None
        except FileNotFoundError:
            continue
        level += 1


def _drop_guards(path: pathlib.Path, key: str) -> None:
    """Remove the guards of a lock that is gone: whoever holds one will find a different lock and back off."""
    for guard in path.parent.glob(f"{path.name}.takeover.{key}.*"):
        guard.unlink(missing_ok=True)


def _refusal(run: str, path: pathlib.Path, holder: dict[str, Any]) -> StageFailed:
    if "pid" in holder:
        who = f"pid {holder['pid']} on host {holder.get('host')}"
        who += f" (SLURM job {holder['slurm_job']})" if holder.get("slurm_job") else ""
    else:
        who = "a file aimed did not write (empty or not JSON: an interrupted older aimed, or another program)"
    expires = holder["expires"]
    return StageFailed(
        f"run '{run}' is already training: its lock {path} is held by {who} since "
        f"{_utc(holder.get('started', holder['_mtime']))}, and its lease expires at {_utc(expires)} "
        f"(in {max(0.0, expires - time.time()):.0f} s) unless renewed. Wait for that training to finish; if it "
        f"died, its lock is taken over automatically once the lease expires (at once for a dead process on this "
        f"host or an earlier run of this SLURM job). If you are sure no training of '{run}' runs, delete {path}."
    )


class Lease:
    """A held training lock; a daemon thread renews it every quarter lease."""

    def __init__(self, path: pathlib.Path, run: str, record: dict[str, Any], lease: float) -> None:
        self.path, self.run, self.record, self.lease = path, run, record, lease
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lock-heartbeat-{run}", daemon=True)
        self._thread.start()

    def check(self) -> None:
        """Raise if another process took the lock over (this one stalled for longer than its lease)."""
        if self.lost:
            raise StageFailed(
                f"run '{self.run}' lost its training lock {self.path}: this process (pid {self.record['pid']} on "
                f"{self.record['host']}) did not renew its {self.lease:.0f} s lease in time (suspended, or a stalled "
                f"file system), and another training took the lock over. This one stops so that two trainings "
                f"never write the same state; the other one continues the run."
            )

    def _beat(self) -> None:
        while not self._stop.wait(self.lease / 4):
            guard = _guard(self.path, self.record["token"])
            if guard is None:
                continue  # Someone judges our lease expired; the next beat sees who won.
            try:
                holder = _read(self.path, self.lease)
                if holder is None or holder.get("token") != self.record["token"]:
                    self.lost = True
                    return
                now = time.time()
                self.record.update(renewed=now, expires=now + self.lease)
                atomic_write_json(self.path, self.record)
            except OSError:
                pass  # A transient file-system error: the lease leaves three more beats to retry.
            finally:
                guard.unlink(missing_ok=True)

    def release(self) -> None:
        """Stop the heartbeat, then remove the lock if it is still ours."""
        self._stop.set()
        self._thread.join()
        token = self.record["token"]
        guard = _guard(self.path, token)
        while guard is None:  # Bounded: a guard blocks for at most GUARD_STALE_SECONDS.
            time.sleep(0.05)
            guard = _guard(self.path, token)
        holder = _read(self.path, self.lease)
        if holder is not None and holder.get("token") == token:
            self.path.unlink(missing_ok=True)
        _drop_guards(self.path, token)


def _acquire(path: pathlib.Path, run: str, lease: float) -> dict[str, Any]:
    now = time.time()
    me = {"pid": os.getpid(), "host": socket.gethostname(), "slurm_job": os.environ.get("SLURM_JOB_ID") or None,
          "token": secrets.token_hex(16), "started": now, "renewed": now, "expires": now + lease}
    while True:
        if _link(path, me):
            return me
        holder = _read(path, lease)
        if holder is None:
            continue
        if not _stale(holder, me):
            raise _refusal(run, path, holder)
        guard = _guard(path, holder["_key"])
        if guard is None:
            time.sleep(0.02)  # Another contender is taking over; retrying will show its lock.
            continue
        try:
            again = _read(path, lease)
            if again is not None and again["_key"] == holder["_key"] and _stale(again, me):
                path.unlink(missing_ok=True)
                now = time.time()
                me.update(started=now, renewed=now, expires=now + lease)
                won = _link(path, me)
                _drop_guards(path, holder["_key"])
                if won:
                    return me
        finally:
            guard.unlink(missing_ok=True)


@contextlib.contextmanager
def train_lock(path: pathlib.Path, run: str, lease_seconds: float = LEASE_SECONDS) -> Iterator[Lease]:
    """Hold the training lock of a run; a lock whose holder is gone is taken over (see the module doc)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lease = Lease(path, run, _acquire(path, run, lease_seconds), lease_seconds)
    try:
        yield lease
    finally:
        lease.release()
        # A training that failed before writing anything leaves no empty state/<run>/ behind.
        with contextlib.suppress(OSError):
            path.parent.rmdir()
