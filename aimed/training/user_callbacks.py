"""The user's callbacks (``ModelBuilder.get_callbacks()``) kept as they would be in one ``fit``.

aimed trains in several ``fit`` calls: ``EPOCHS_PER_FIT`` epochs at a time, a resumed partial
epoch on its own, and a new process after every preemption. Keras callbacks keep state from epoch
to epoch (EarlyStopping's patience count and best value, ReduceLROnPlateau's wait and cooldown,
ModelCheckpoint's best) and reset it in ``on_train_begin``; EarlyStopping with
``restore_best_weights`` also puts the best weights back in ``on_train_end``. Fed the begin and
end of every ``fit``, they would lose their patience every 25 epochs and at every resume, and put
old weights back into the middle of a training.

So each callback is handed to Keras behind a :class:`_OneFit`: ``on_train_begin`` reaches it once
per process, and then the state saved with the last commit is put back; ``on_train_end`` only
when the training ends (its last epoch, or a callback stopped it). What is saved: for Keras'
EarlyStopping, ReduceLROnPlateau and ModelCheckpoint (and subclasses), the attributes their
``on_train_begin`` resets (:data:`KERAS_STATE`); for any callback with ``get_state()`` and
``set_state(state)`` methods, what ``get_state()`` returns (JSON-able). Not other attributes: some
are derived lazily from the settings (EarlyStopping flips ``min_delta``'s sign when it first picks
its comparison), and putting them back would apply that twice. EarlyStopping's ``best_weights``
live in memory only: after a restart they start again from the first epoch it sees (aimed exports
its own best epoch, from the commits, either way).
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, List, Optional

import numpy as np

log = logging.getLogger(__name__)

#: One callback's saved state in ``state.json``: ``{"class": qualified name, "state": {...} or None}``.
CallbackState = Dict[str, Any]


def _class_name(callback: Any) -> str:
    return f"{type(callback).__module__}.{type(callback).__qualname__}"


#: Keras callbacks' state from epoch to epoch: the attributes their ``on_train_begin`` sets anew.
KERAS_STATE = {
    "EarlyStopping": ("wait", "stopped_epoch", "best", "best_epoch"),
    "ReduceLROnPlateau": ("wait", "cooldown_counter", "best"),
    "ModelCheckpoint": ("best",),
}


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _keeps_own_state(callback: Any) -> bool:
    """Whether the callback saves and restores itself (``get_state()`` and ``set_state(state)``)."""
    return callable(getattr(callback, "get_state", None)) and callable(getattr(callback, "set_state", None))


def _state_of(callback: Any) -> Optional[Dict[str, Any]]:
    """What a commit keeps of a callback (see the module docstring), or ``None`` if nothing."""
    if _keeps_own_state(callback):
        return dict(callback.get_state())
    import keras

    for class_name, names in KERAS_STATE.items():
        if isinstance(callback, getattr(keras.callbacks, class_name)):
            return {name: _plain(getattr(callback, name)) for name in names if hasattr(callback, name)}
    return None


def _set_state(callback: Any, state: Dict[str, Any]) -> None:
    if _keeps_own_state(callback):
        callback.set_state(state)
        return
    for name, value in state.items():
        setattr(callback, name, value)


class UserCallbacks:
    """The user's callbacks over all of a training's ``fit`` calls in this process.

    ``saved``: the states of the last commit (``None`` for a new training); ``finished()``: whether
    the ``fit`` now ending is the training's last.
    """

    def __init__(self, callbacks: List[Any], saved: Optional[List[CallbackState]],
                 finished: Callable[[], bool]) -> None:
        self.callbacks = list(callbacks)
        self._saved = saved
        self._finished = finished
        self._begun = [False] * len(self.callbacks)

    def for_fit(self) -> List[Any]:
        """The callbacks to hand to one ``fit`` call."""
        return [_OneFit(self, index) for index in range(len(self.callbacks))]

    def states(self) -> List[CallbackState]:
        """What a commit saves of each callback."""
        return [{"class": _class_name(c), "state": _state_of(c)} for c in self.callbacks]

    def _begin(self, index: int, logs: Any) -> None:
        if self._begun[index]:
            return
        self._begun[index] = True
        callback = self.callbacks[index]
        callback.on_train_begin(logs)
        saved = self._saved[index] if self._saved and index < len(self._saved) else None
        if saved is None or saved.get("state") is None:
            return
        if saved["class"] != _class_name(callback):
            log.warning("not restoring the state of callback %d (%s): the commit saved a %s", index + 1,
                        _class_name(callback), saved["class"])
            return
        _set_state(callback, saved["state"])

    def _end(self, index: int, logs: Any) -> None:
        if self._finished():
            self.callbacks[index].on_train_end(logs)


class _OneFit:
    """One user callback as Keras sees it in one ``fit``: everything but the train begin and end passes through."""

    def __init__(self, owner: UserCallbacks, index: int) -> None:
        self._owner = owner
        self._index = index

    def __getattr__(self, name: str) -> Any:
        # Only called for what _OneFit lacks. Dunder probes (copy, pickle) and the wrapper's own
        # fields before __init__ ran must not reach the callback, or they would recurse.
        if name.startswith("__") or name in ("_owner", "_index"):
            raise AttributeError(name)
        return getattr(self._owner.callbacks[self._index], name)

    def on_train_begin(self, logs: Any = None) -> None:
        self._owner._begin(self._index, logs)

    def on_train_end(self, logs: Any = None) -> None:
        self._owner._end(self._index, logs)
