"""Resume state of a training run, kept in ``state/<run>/train/`` and written atomically.

A checkpoint is one ``.npz`` of every model and optimizer variable (including the dropout seed
generators) plus ``state.json``: the epoch reached, the history so far, the best value of
``export.metric`` and its epoch. ``state.json`` is renamed into place last and names the
weights file it belongs to, so a kill at any moment leaves a consistent previous checkpoint.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pathlib
import shutil
import socket
import time
import zipfile
from typing import Any, Dict, Iterator, List, Optional

import numpy as np

from aimed._io import atomic_write_bytes, atomic_write_json
from aimed.errors import StageFailed

STATE_FILE = "state.json"
ARCHIVE_DIR = "archive"
ARCHIVES_KEPT = 3


def variables_to_bytes(variables: List[Any]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **{f"{i:05d}": np.asarray(v.numpy()) for i, v in enumerate(variables)})
    return buffer.getvalue()


def assign_variables(variables: List[Any], path: pathlib.Path) -> None:
    try:
        saved_file = np.load(path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise _damaged(path, f"cannot be read as a checkpoint ({type(exc).__name__}: {exc})") from None
    with saved_file as saved:
        if len(saved.files) != len(variables):
            raise StageFailed(
                f"checkpoint {path} holds {len(saved.files)} variables but the model has {len(variables)}; "
                f"the model code changed without changing its fingerprint. Delete {path.parent} to start fresh."
            )
        for i, variable in enumerate(variables):
            variable.assign(saved[f"{i:05d}"])


def all_variables(model: Any) -> List[Any]:
    """Model variables (with seed generator states) then optimizer variables, in a stable order."""
    return list(model.variables) + list(model.optimizer.variables)


class TrainState:
    """The resume state in one folder: read, advanced epoch by epoch, archived when stale."""

    def __init__(self, folder: pathlib.Path, writable: bool = True) -> None:
        self.folder = folder
        self.writable = writable
        self.data: Dict[str, Any] = {}
        path = folder / STATE_FILE
        if path.is_file():
            self.data = _read_state(path)

    @property
    def exists(self) -> bool:
        return bool(self.data)

    @property
    def epoch(self) -> int:
        """Number of completed epochs."""
        return int(self.data.get("epoch", 0))

    @property
    def history(self) -> List[Dict[str, float]]:
        return list(self.data.get("history", []))

    def start(self, fingerprint: str, parts: Dict[str, Any]) -> None:
        self.data = {"fingerprint": fingerprint, "parts": parts, "epoch": 0, "history": [],
                     "best": None, "weights": None, "best_weights": None}

    def restore(self, model: Any) -> None:
        if self.data.get("weights"):
            path = self.folder / self.data["weights"]
            _verify(path, self.data.get("hashes", {}).get(self.data["weights"]))
            assign_variables(all_variables(model), path)

    def verify_best(self) -> pathlib.Path:
        """The best epoch's weights file, checked against the hash ``state.json`` recorded for it."""
        path = self.folder / self.data["best_weights"]
        _verify(path, self.data.get("hashes", {}).get(self.data["best_weights"]))
        return path

    def commit_epoch(self, model: Any, logs: Dict[str, float], is_best: bool, best: Optional[Dict[str, Any]]) -> None:
        """Record a finished epoch: new weights file, then ``state.json`` pointing at it.

        A read-only state (a non-chief worker) advances in memory only.
        """
        epoch = self.epoch + 1
        weights_name = f"epoch-{epoch:05d}.npz"
        if not self.writable:
            self.data = dict(self.data, epoch=epoch, history=self.history + [dict(logs, epoch=epoch)],
                             best=best if is_best else self.data.get("best"))
            return
        weights = variables_to_bytes(all_variables(model))
        atomic_write_bytes(self.folder / weights_name, weights)
        new = dict(self.data, epoch=epoch, history=self.history + [dict(logs, epoch=epoch)], weights=weights_name)
        hashes = {weights_name: hashlib.sha256(weights).hexdigest()}
        if is_best:
            best_name = f"best-{epoch:05d}.npz"
            best_weights = variables_to_bytes(list(model.variables))
            atomic_write_bytes(self.folder / best_name, best_weights)
            new.update(best=best, best_weights=best_name)
            hashes[best_name] = hashlib.sha256(best_weights).hexdigest()
        elif new.get("best_weights") in self.data.get("hashes", {}):
            hashes[new["best_weights"]] = self.data["hashes"][new["best_weights"]]
        new["hashes"] = hashes
        atomic_write_json(self.folder / STATE_FILE, new)
        keep = {new["weights"], new["best_weights"]}
        # Temp files are left by writes that a kill interrupted; only the lock holder writes here.
        for old in [*self.folder.glob("*.npz"), *self.folder.glob(".*.tmp")]:
            if old.name not in keep:
                old.unlink()
        self.data = new

    def update(self, values: Dict[str, Any]) -> None:
        self.data.update(values)
        if self.writable:
            atomic_write_json(self.folder / STATE_FILE, self.data)


def _damaged(path: pathlib.Path, why: str) -> StageFailed:
    return StageFailed(
        f"the resume state is damaged: {path} {why}. Restore the folder {path.parent} from a backup, or move it "
        f"aside to train from the start."
    )


def _read_state(path: pathlib.Path) -> Dict[str, Any]:
    """``state.json``, checked: valid JSON of the right shape, its history as long as its epoch."""
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise _damaged(path, f"is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("epoch"), int) or not isinstance(data.get("history"), list):
        raise _damaged(path, "does not hold an epoch number and a history list")
    epochs = [row.get("epoch") if isinstance(row, dict) else None for row in data["history"]]
    if epochs != list(range(1, data["epoch"] + 1)):
        raise _damaged(path, f"says epoch {data['epoch']}, but its history holds the epochs {epochs}")
    return data


def _verify(path: pathlib.Path, expected: Optional[str]) -> None:
    """A weights file exists and has the sha256 ``state.json`` recorded (states from before hashes: not checked)."""
    if not path.is_file():
        raise _damaged(path, "is missing, though state.json names it")
    if expected is not None and hashlib.sha256(path.read_bytes()).hexdigest() != expected:
        raise _damaged(path, "does not have the content state.json recorded for it (truncated or changed)")


def archive(folder: pathlib.Path, *belongings: pathlib.Path) -> Optional[pathlib.Path]:
    """Move a stale state folder aside into ``<folder>/../archive``; keep the newest few.

    ``belongings`` (such as the state's TensorBoard logs) go inside it, so the next state starts
    without them. They are moved in first: a kill in between leaves them in the stale folder,
    which the next run archives.
    """
    if not (folder / STATE_FILE).is_file():
        return None
    for item in belongings:
        if item.exists():
            os.replace(item, folder / item.name)
    archive_root = folder.parent / ARCHIVE_DIR
    archive_root.mkdir(parents=True, exist_ok=True)
    target = archive_root / time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    suffix = 0
    while target.exists():
        suffix += 1
        target = target.with_name(f"{target.name.split('-')[0]}-{suffix}")
    os.replace(folder, target)
    for stale in sorted(archive_root.iterdir())[:-ARCHIVES_KEPT]:
        shutil.rmtree(stale, ignore_errors=True)
    return target


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def train_lock(path: pathlib.Path, run: str) -> Iterator[None]:
    """Hold an exclusive lock file for a run's training; a lock of a dead process is taken over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                holder = json.loads(path.read_text() or "{}")
            except (OSError, ValueError):
                holder = {}
            same_host = holder.get("host") == me["host"]
            if holder and same_host and not _pid_alive(int(holder.get("pid", -1))):
                path.unlink(missing_ok=True)
                continue
            if not holder and time.time() - path.stat().st_mtime > 60:
                path.unlink(missing_ok=True)
                continue
            raise StageFailed(
                f"run '{run}' is already training (lock {path} held by pid {holder.get('pid')} on "
                f"{holder.get('host')}). Wait for it to finish, or if that process is gone on another host, "
                f"delete the lock file."
            )
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        break
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        # A training that failed before writing anything leaves no empty state/<run>/ behind.
        with contextlib.suppress(OSError):
            path.parent.rmdir()
