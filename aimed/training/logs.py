"""Where training reports: the history CSV, TensorBoard scalars, the console line per epoch."""

from __future__ import annotations

import csv
import io
import sys
from typing import Any, Dict, List


def verbosity(setting: Any) -> int:
    """Keras verbosity; 2 means aimed prints one line per epoch itself (for logs, not a TTY)."""
    if setting == "auto":
        return 1 if sys.stdout.isatty() else 2
    return int(setting)


def history_csv(history: List[Dict[str, float]]) -> str:
    columns = ["epoch"] + sorted({k for row in history for k in row} - {"epoch"})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: row.get(k, "") for k in columns})
    return out.getvalue()


class TensorBoardLog:
    """Epoch scalars in the layout of Keras' TensorBoard callback (``train/``, ``validation/``, ``epoch_*``).

    Steps are epoch numbers taken from the committed history, so a resumed run continues the
    curves instead of restarting them. Scalars already in the event files are not written again,
    and ``write(state.history)`` on resume adds those of epochs committed just before a kill.
    """

    SIDES = ("train", "validation")

    def __init__(self, folder) -> None:
        import tensorflow as tf

        self._tf = tf
        self.logged = {side: self._logged(folder / side) for side in self.SIDES}
        self.writers = {side: tf.summary.create_file_writer(str(folder / side)) for side in self.SIDES}

    def _logged(self, folder) -> set:
        """``(tag, step)`` of every scalar in a folder's event files."""
        found = set()
        for path in sorted(folder.glob("events.out.tfevents.*")):
            try:
                for event in self._tf.compat.v1.train.summary_iterator(str(path)):
                    found.update((value.tag, event.step) for value in event.summary.value)
            except self._tf.errors.DataLossError:  # a record cut short by a kill; it is written again
                pass
        return found

    def write(self, rows: List[Dict[str, float]]) -> None:
        for row in rows:
            step = int(row["epoch"])
            for key, value in row.items():
                if key == "epoch":
                    continue
                side, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
                tag = f"epoch_{name}"
                if (tag, step) in self.logged[side]:
                    continue
                with self.writers[side].as_default():
                    self._tf.summary.scalar(tag, value, step=step)
                self.logged[side].add((tag, step))
        for writer in self.writers.values():
            writer.flush()
