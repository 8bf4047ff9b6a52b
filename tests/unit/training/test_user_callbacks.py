"""aimed.training.user_callbacks: the user's Keras callbacks see several fit calls, and restarts, as one fit."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from aimed.training.user_callbacks import UserCallbacks

keras = pytest.importorskip("keras")


def _model(learning_rate: float = 0.0) -> "keras.Model":
    """A model whose loss never improves at learning rate 0: every epoch after the first is a plateau."""
    keras.utils.set_random_seed(3)
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer=keras.optimizers.SGD(learning_rate), loss="mse")
    return model


X, Y = np.ones((8, 2), np.float32), np.zeros((8, 1), np.float32)


def _fit_in_chunks(model, user: UserCallbacks, epochs: int, chunk: int, start: int = 0) -> int:
    """Train like aimed's loop: ``chunk`` epochs per fit until ``epochs`` or a callback stops; the epochs done."""
    done = start
    while done < epochs and not model.stop_training:
        last = min(done + chunk, epochs)
        history = model.fit(X, Y, batch_size=8, initial_epoch=done, epochs=last, verbose=0,
                            callbacks=user.for_fit(), shuffle=False)
        done += len(history.epoch)
    return done


def _epochs_in_one_fit(callback, epochs: int = 12) -> int:
    history = _model().fit(X, Y, batch_size=8, epochs=epochs, verbose=0, callbacks=[callback], shuffle=False)
    return len(history.epoch)


def test_early_stopping_patience_runs_on_across_fit_calls():
    expected = _epochs_in_one_fit(keras.callbacks.EarlyStopping(monitor="loss", patience=3))
    assert expected == 4  # the first epoch sets the best, three more without improvement stop it
    model = _model()
    stopper = keras.callbacks.EarlyStopping(monitor="loss", patience=3)
    done = _fit_in_chunks(model, UserCallbacks([stopper], None, finished=lambda: model.stop_training), 12, chunk=2)
    assert done == expected

    # The callbacks as Keras gets them without aimed's wrapper reset their patience at every fit.
    model = _model()
    plain = keras.callbacks.EarlyStopping(monitor="loss", patience=3)
    done = 0
    while done < 12 and not model.stop_training:
        done += len(model.fit(X, Y, batch_size=8, initial_epoch=done, epochs=done + 2, verbose=0,
                              callbacks=[plain]).epoch)
    assert done == 12


def test_a_restarted_training_restores_the_saved_state_of_each_callback():
    model = _model()
    first = UserCallbacks([keras.callbacks.EarlyStopping(monitor="loss", patience=3)], None, finished=lambda: False)
    assert _fit_in_chunks(model, first, 2, chunk=2) == 2
    saved = json.loads(json.dumps(first.states()))  # as state.json holds it
    assert saved[0]["class"] == "keras.src.callbacks.early_stopping.EarlyStopping"
    assert saved[0]["state"] == {"wait": 1, "stopped_epoch": 0, "best": pytest.approx(1.0, abs=1), "best_epoch": 0}

    restarted = _model()  # a new process: new model, new callback objects
    again = UserCallbacks([keras.callbacks.EarlyStopping(monitor="loss", patience=3)], saved,
                          finished=lambda: restarted.stop_training)
    assert _fit_in_chunks(restarted, again, 12, chunk=2, start=2) == 4


def test_reduce_lr_on_plateau_reduces_as_in_one_fit():
    single = _model(1e-9)
    single.fit(X, Y, batch_size=8, epochs=9, verbose=0, shuffle=False,
               callbacks=[keras.callbacks.ReduceLROnPlateau(monitor="loss", patience=2, factor=0.5, min_delta=1.0)])
    chunked = _model(1e-9)
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="loss", patience=2, factor=0.5, min_delta=1.0)
    _fit_in_chunks(chunked, UserCallbacks([plateau], None, finished=lambda: False), 9, chunk=2)
    assert float(chunked.optimizer.learning_rate) == pytest.approx(float(single.optimizer.learning_rate))
    assert float(chunked.optimizer.learning_rate) < 1e-9


def test_train_end_reaches_the_callbacks_only_when_the_training_ends():
    model = _model(1.5)  # diverges: the first epoch stays the best
    stopper = keras.callbacks.EarlyStopping(monitor="loss", patience=50, restore_best_weights=True)
    ended = []
    user = UserCallbacks([stopper], None, finished=lambda: len(ended) == 1)
    model.fit(X, Y, batch_size=8, epochs=3, verbose=0, callbacks=user.for_fit(), shuffle=False)
    after_first_fit = [w.copy() for w in model.get_weights()]
    assert stopper.best_epoch == 0
    # Not the best weights: the training goes on from where it is.
    assert not all(np.array_equal(a, b) for a, b in zip(after_first_fit, stopper.best_weights))
    ended.append(True)
    model.fit(X, Y, batch_size=8, initial_epoch=3, epochs=4, verbose=0, callbacks=user.for_fit(), shuffle=False)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), stopper.best_weights))


def test_a_saved_state_of_another_callback_class_is_not_restored(caplog):
    saved = [{"class": "keras.src.callbacks.early_stopping.EarlyStopping", "state": {"wait": 7}}]
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="loss")
    model = _model()
    with caplog.at_level(logging.WARNING, logger="aimed.training.user_callbacks"):
        _fit_in_chunks(model, UserCallbacks([plateau], saved, finished=lambda: False), 1, chunk=1)
    assert "not restoring the state of callback 1" in caplog.text
    assert plateau.wait == 0


class _Counter(keras.callbacks.Callback):
    """A callback of the user's own that keeps its state through get_state() and set_state()."""

    def on_train_begin(self, logs=None):
        self.epochs_seen = 0

    def on_epoch_end(self, epoch, logs=None):
        self.epochs_seen += 1

    def get_state(self):
        return {"epochs_seen": self.epochs_seen}

    def set_state(self, state):
        self.epochs_seen = state["epochs_seen"]


def test_a_callback_with_get_state_and_set_state_keeps_what_it_returns():
    counter = _Counter()
    model = _model()
    user = UserCallbacks([keras.callbacks.Callback(), counter], None, finished=lambda: False)
    _fit_in_chunks(model, user, 3, chunk=2)
    assert user.states()[0]["state"] is None and user.states()[1]["state"] == {"epochs_seen": 3}
    again = _Counter()
    _fit_in_chunks(_model(), UserCallbacks([keras.callbacks.Callback(), again], user.states(), finished=lambda: False),
                   5, chunk=2, start=3)
    assert again.epochs_seen == 5


def test_the_wrapper_passes_attributes_through_and_copies_without_recursing():
    import copy

    stopper = keras.callbacks.EarlyStopping(monitor="loss", patience=4)
    (wrapped,) = UserCallbacks([stopper], None, finished=lambda: False).for_fit()
    assert wrapped.patience == 4 and wrapped.monitor == "loss"
    assert copy.copy(wrapped).patience == 4
