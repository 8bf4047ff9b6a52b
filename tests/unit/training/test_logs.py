"""aimed.training.logs: the history CSV, TensorBoard epoch scalars, Keras verbosity."""

from __future__ import annotations

import collections
import csv
import io
import sys

import pytest

from aimed.training.logs import TensorBoardLog, history_csv, verbosity


class _Stdout:
    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


@pytest.mark.parametrize("tty, expected", [(True, 1), (False, 2)])
def test_verbosity_auto_depends_on_the_terminal(monkeypatch, tty, expected):
    monkeypatch.setattr(sys, "stdout", _Stdout(tty))
    assert verbosity("auto") == expected


@pytest.mark.parametrize("setting, expected", [(0, 0), (1, 1), (2, 2), ("2", 2)])
def test_verbosity_numbers_pass_through(setting, expected):
    assert verbosity(setting) == expected


def test_history_csv_has_epoch_first_then_sorted_columns_and_blanks_for_missing_values():
    history = [
        {"epoch": 1, "loss": 0.5, "val_loss": 0.6},
        {"loss": 0.25, "accuracy": 0.75, "epoch": 2},
    ]
    text = history_csv(history)
    lines = text.splitlines()
    assert lines[0] == "epoch,accuracy,loss,val_loss"
    assert text.endswith("\n") and "\r" not in text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows == [
        {"epoch": "1", "accuracy": "", "loss": "0.5", "val_loss": "0.6"},
        {"epoch": "2", "accuracy": "0.75", "loss": "0.25", "val_loss": ""},
    ]


def test_history_csv_of_no_epochs_is_a_header():
    assert history_csv([]) == "epoch\n"


def _scalars(folder):
    """``{(tag, step): [values]}`` of every scalar in a folder's event files."""
    import tensorflow as tf

    found = collections.defaultdict(list)
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                found[(value.tag, event.step)].append(float(tf.make_ndarray(value.tensor)))
    return dict(found)


def test_tensorboard_log_writes_each_scalar_once_across_instances(tmp_path):
    first = TensorBoardLog(tmp_path)
    rows = [{"epoch": 1, "loss": 0.5, "val_loss": 0.75, "accuracy": 0.25}]
    first.write(rows)
    first.write(rows)  # the same instance does not write again either
    # A resumed run: a new instance on the same folder, given the whole history.
    second = TensorBoardLog(tmp_path)
    assert ("epoch_loss", 1) in second.logged["train"]
    assert ("epoch_loss", 1) in second.logged["validation"]
    second.write(rows + [{"epoch": 2, "loss": 0.375, "val_loss": 0.5, "accuracy": 0.5}])
    for writer in [*first.writers.values(), *second.writers.values()]:
        writer.close()

    assert _scalars(tmp_path / "train") == {
        ("epoch_loss", 1): [0.5], ("epoch_accuracy", 1): [0.25],
        ("epoch_loss", 2): [0.375], ("epoch_accuracy", 2): [0.5],
    }
    assert _scalars(tmp_path / "validation") == {("epoch_loss", 1): [0.75], ("epoch_loss", 2): [0.5]}


def test_tensorboard_log_skips_a_cut_short_event_file(tmp_path):
    log = TensorBoardLog(tmp_path)
    log.write([{"epoch": 1, "loss": 1.0}])
    for writer in log.writers.values():
        writer.close()
    (path,) = (tmp_path / "train").glob("events.out.tfevents.*")
    data = path.read_bytes()
    path.write_bytes(data[:-5])  # a kill in the middle of the last record
    again = TensorBoardLog(tmp_path)  # reads what it can, does not fail
    assert ("epoch_loss", 1) not in again.logged["train"]
    again.write([{"epoch": 1, "loss": 1.0}])  # the lost scalar is written again
    for writer in again.writers.values():
        writer.close()
    assert ("epoch_loss", 1) in TensorBoardLog(tmp_path).logged["train"]
