"""The resume state: a damaged state.json or weights file is named, never read as if it were sound."""

from __future__ import annotations

import json
import pathlib

import pytest

from aimed.errors import StageFailed
from aimed.training.state import STATE_FILE, TrainState


@pytest.fixture
def committed(tmp_path) -> tuple:
    """A state folder with two committed epochs of a tiny model, and a fresh model to restore into."""
    import keras

    def model():
        inputs = keras.Input((3,))
        built = keras.Model(inputs, keras.layers.Dense(2)(inputs))
        built.compile(optimizer="adam", loss="mse")
        built.optimizer.build(built.trainable_variables)
        return built

    state = TrainState(tmp_path / "train")
    state.folder.mkdir()
    state.start("fingerprint", {})
    trained = model()
    state.commit_epoch(trained, {"loss": 1.0}, True, {"metric": "loss", "value": 1.0, "epoch": 1})
    state.commit_epoch(trained, {"loss": 2.0}, False, None)
    return state.folder, model


def test_a_sound_state_restores_and_names_its_best_weights(committed):
    folder, model = committed
    state = TrainState(folder)
    assert state.epoch == 2 and set(state.data["hashes"]) == {"epoch-00002.npz", "best-00001.npz"}
    state.restore(model())
    assert state.verify_best() == folder / "best-00001.npz"


def _edit_json(path: pathlib.Path, **changes) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


STATE_DAMAGE = {
    "emptied": (lambda p: p.write_text(""), "is not valid JSON"),
    "truncated": (lambda p: p.write_text(p.read_text()[:40]), "is not valid JSON"),
    "garbled": (lambda p: p.write_bytes(b"\xff\xfe\x00garbage"), "is not valid JSON"),
    "epoch lowered": (lambda p: _edit_json(p, epoch=1), "says epoch 1, but its history holds the epochs [1, 2]"),
    "epoch raised": (lambda p: _edit_json(p, epoch=3), "says epoch 3"),
    "not a state": (lambda p: p.write_text("[1, 2]"), "does not hold an epoch number"),
}


@pytest.mark.parametrize("damage", sorted(STATE_DAMAGE))
def test_a_damaged_state_json_is_named(committed, damage):
    folder, _ = committed
    change, expected = STATE_DAMAGE[damage]
    change(folder / STATE_FILE)
    with pytest.raises(StageFailed, match="the resume state is damaged") as info:
        TrainState(folder)
    assert str(folder / STATE_FILE) in str(info.value) and expected in str(info.value)


def _flip_a_byte(path: pathlib.Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


WEIGHTS_DAMAGE = {
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:100]), "does not have the content"),
    "bit-flipped": (_flip_a_byte, "does not have the content"),
    "deleted": (lambda p: p.unlink(), "is missing"),
}


@pytest.mark.parametrize("damage", sorted(WEIGHTS_DAMAGE))
@pytest.mark.parametrize("which", ["epoch-00002.npz", "best-00001.npz"])
def test_a_damaged_weights_file_is_named(committed, damage, which):
    folder, _ = committed
    change, expected = WEIGHTS_DAMAGE[damage]
    change(folder / which)
    with pytest.raises(StageFailed, match="the resume state is damaged") as info:
        TrainState(folder)
    assert str(folder / which) in str(info.value) and expected in str(info.value)
    # The best epoch (1) is the best of the previous commit too: going back cannot repair its file.
    offer = "--from-previous` to continue" if which.startswith("epoch") else "--from-previous cannot help"
    assert offer in str(info.value)


RECOVERABLE = [("state.json", kind) for kind in sorted(STATE_DAMAGE)] + [
    ("epoch-00002.npz", kind) for kind in sorted(WEIGHTS_DAMAGE)]


@pytest.mark.parametrize("which,damage", RECOVERABLE)
def test_from_previous_continues_from_the_commit_before_a_damaged_one(committed, which, damage):
    folder, model = committed
    change = (STATE_DAMAGE if which == STATE_FILE else WEIGHTS_DAMAGE)[damage][0]
    change(folder / which)
    state = TrainState(folder, from_previous=True)
    assert (state.epoch, state.batch, state.data["weights"]) == (1, 0, "epoch-00001.npz")
    state.restore(model())
    reopened = TrainState(folder)  # the previous commit is the newest again
    assert reopened.epoch == 1 and reopened.verify_best() == folder / "best-00001.npz"


def test_mid_epoch_commits_keep_the_commit_before_them(committed):
    folder, model = committed
    state = TrainState(folder)
    trained = model()
    state.commit_batch(trained, 3)
    state.commit_batch(trained, 6)
    assert (state.epoch, state.batch) == (2, 6)
    assert sorted(p.name for p in folder.glob("*.npz")) == [
        "best-00001.npz", "epoch-00002-batch-000003.npz", "epoch-00002-batch-000006.npz"]
    previous = TrainState(folder, writable=False, from_previous=True)
    assert (previous.epoch, previous.batch) == (2, 3)


def test_from_previous_without_a_previous_commit_says_so(tmp_path):
    with pytest.raises(StageFailed, match="holds no previous commit"):
        TrainState(tmp_path, from_previous=True)
