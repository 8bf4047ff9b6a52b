"""Resume state of a training run, kept in ``state/<run>/train/`` and written atomically.

A commit is one ``.npz`` of every model, optimizer and metric variable (including the dropout
seed generators) plus ``state.json``: the position reached (completed epochs, and batches of the
next epoch for a mid-epoch commit), the history so far, the best value of ``export.metric`` and
its epoch, and the sha256 of every weights file it names. ``state.json`` is renamed into place
last, so a kill at any moment leaves a consistent commit. The commit before it stays, as
``previous.json`` with its files, for ``aimed train --from-previous`` when the newest is damaged.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
import shutil
import time
import zipfile
from typing import Any, Dict, List, Optional

import numpy as np

from aimed._io import atomic_write_bytes, atomic_write_json
from aimed.errors import StageFailed

STATE_FILE = "state.json"
PREVIOUS_FILE = "previous.json"
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
    """Model variables (with seed generator states), optimizer, then metric variables, in a stable order.

    The metric variables hold an epoch's running loss and metrics, which a mid-epoch commit must
    carry for the resumed epoch to log what an uninterrupted one logs.
    """
    return list(model.variables) + list(model.optimizer.variables) + list(model.metrics_variables)


def _weights_name(epoch: int, batch: int) -> str:
    return f"epoch-{epoch:05d}.npz" if batch == 0 else f"epoch-{epoch:05d}-batch-{batch:06d}.npz"


class TrainState:
    """The resume state in one folder: read and checked, advanced commit by commit, archived when stale.

    ``from_previous`` reads ``previous.json`` (the commit before the newest) instead of
    ``state.json``; a writable state then makes it the newest again.
    """

    def __init__(self, folder: pathlib.Path, writable: bool = True, from_previous: bool = False) -> None:
        self.folder = folder
        self.writable = writable
        self.data: Dict[str, Any] = {}
        path = folder / (PREVIOUS_FILE if from_previous else STATE_FILE)
        if from_previous and not path.is_file():
            raise StageFailed(
                f"--from-previous was given, but {folder} holds no previous commit ({PREVIOUS_FILE}). "
                f"Move the folder aside to train from the start."
            )
        if path.is_file():
            self.data = _read_state(path)
            # The writer (the chief) checks the files; a non-chief worker reads them while the chief
            # may be moving a stale state aside, and trusts the chief's check.
            for name in {self.data.get("weights"), self.data.get("best_weights")} - {None} if writable else ():
                _verify(folder / name, self.data.get("hashes", {}).get(name))
        if from_previous and writable:
            atomic_write_json(folder / STATE_FILE, self.data)

    @property
    def exists(self) -> bool:
        return bool(self.data)

    @property
    def epoch(self) -> int:
        """Number of completed epochs."""
        return int(self.data.get("epoch", 0))

    @property
    def batch(self) -> int:
        """Batches of epoch ``epoch + 1`` already trained (a mid-epoch commit), else 0."""
        return int(self.data.get("batch", 0))

    @property
    def history(self) -> List[Dict[str, float]]:
        return list(self.data.get("history", []))

    def start(self, fingerprint: str, parts: Dict[str, Any]) -> None:
        self.data = {"fingerprint": fingerprint, "parts": parts, "epoch": 0, "batch": 0, "history": [],
                     "best": None, "weights": None, "best_weights": None, "hashes": {}}

    def restore(self, model: Any) -> None:
        if self.data.get("weights"):
            assign_variables(all_variables(model), self.folder / self.data["weights"])

    def verify_best(self) -> pathlib.Path:
        """The best epoch's weights file, checked against the hash ``state.json`` recorded for it."""
        path = self.folder / self.data["best_weights"]
        _verify(path, self.data.get("hashes", {}).get(self.data["best_weights"]))
        return path

    def commit_epoch(self, model: Any, logs: Dict[str, float], is_best: bool, best: Optional[Dict[str, Any]],
                     callbacks: Optional[List[Dict[str, Any]]] = None) -> None:
        """Record a finished epoch (and, if it is the best so far, its model weights).

        ``callbacks``: the state of the user's callbacks (see :mod:`aimed.training.user_callbacks`).
        """
        epoch = self.epoch + 1
        new = dict(self.data, epoch=epoch, batch=0, history=self.history + [dict(logs, epoch=epoch)],
                   callbacks=callbacks or [])
        extra = {}
        if is_best:
            new.update(best=best, best_weights=f"best-{epoch:05d}.npz")
            extra[new["best_weights"]] = list(model.variables)
        self._commit(model, new, extra)

    def commit_batch(self, model: Any, batch: int, callbacks: Optional[List[Dict[str, Any]]] = None) -> None:
        """Record ``batch`` trained batches of the epoch in progress (a mid-epoch commit)."""
        self._commit(model, dict(self.data, batch=batch, callbacks=callbacks or []), {})

    def _commit(self, model: Any, new: Dict[str, Any], extra: Dict[str, List[Any]]) -> None:
        """Write the weights files, then ``previous.json``, then ``state.json``; drop what neither names.

        A read-only state (a non-chief worker) advances in memory only, but reads the variables
        as the chief does: under a multi-worker strategy, reading a metric variable is a collective
        that every worker must join.
        """
        new["weights"] = _weights_name(new["epoch"], new["batch"])
        contents = {name: variables_to_bytes(variables)
                    for name, variables in {new["weights"]: all_variables(model), **extra}.items()}
        if not self.writable:
            self.data = new
            return
        hashes = {k: v for k, v in self.data.get("hashes", {}).items() if k == new.get("best_weights")}
        for name, content in contents.items():
            atomic_write_bytes(self.folder / name, content)
            hashes[name] = hashlib.sha256(content).hexdigest()
        new["hashes"] = hashes
        if self.data.get("weights"):
            atomic_write_json(self.folder / PREVIOUS_FILE, self.data)
        atomic_write_json(self.folder / STATE_FILE, new)
        keep = {new["weights"], new["best_weights"], self.data.get("weights"), self.data.get("best_weights")}
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
    """The error for a damaged file, offering ``--from-previous`` where the previous commit does not use it."""
    fix = f"Restore the folder {path.parent} from a backup, or move it aside to train from the start."
    previous = path.parent / PREVIOUS_FILE
    if path.name != PREVIOUS_FILE and previous.is_file():
        try:
            shared = path.name in json.loads(previous.read_text()).get("hashes", {})
        except (OSError, ValueError, AttributeError):
            shared = True
        if shared:
            fix = (f"The previous commit ({previous}) needs this file too, so --from-previous cannot help: restore "
                   f"the folder {path.parent} from a backup, or move it aside to train from the start.")
        else:
            fix = (f"Run `aimed train {path.parent.parent.name} --from-previous` to continue from the commit before "
                   f"it ({previous}), or move the folder {path.parent} aside to train from the start.")
    return StageFailed(f"the resume state is damaged: {path} {why}. {fix}")


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
    if not isinstance(data.get("batch", 0), int) or data.get("batch", 0) < 0:
        raise _damaged(path, f"holds the batch position {data.get('batch')!r}, which is not a count of batches")
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
    # Names sort in the order the archives were made: a UTC second, then a zero-padded sequence
    # number within it that continues after the highest one there (pruned names are never reused).
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    same_second = [int(p.name.rpartition("-")[2]) for p in archive_root.glob(f"{stamp}-*")
                   if p.name.rpartition("-")[2].isdigit()]
    target = archive_root / f"{stamp}-{max(same_second, default=0) + 1:04d}"
    os.replace(folder, target)
    for stale in sorted(archive_root.iterdir())[:-ARCHIVES_KEPT]:
        if stale != target:
            shutil.rmtree(stale, ignore_errors=True)
    return target
