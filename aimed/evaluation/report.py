"""The per-datapoint report, written batch by batch as CSV (default) or Parquet, and its cells.

Cells are formatted a whole column of a batch at a time; the text of every cell is what
:func:`cell` gives for that row's value alone.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, Dict, List, Optional

import numpy as np

#: Vectors of up to this many values are written in full (as JSON), larger arrays by their mean.
MAX_JSON_VALUES = 32


def float_cells(values: Any) -> List[str]:
    """``repr`` of each value as a Python float: the shortest text that reads back as the same number."""
    return list(map(repr, np.asarray(values, dtype=np.float64).reshape(-1).tolist()))


def _json_vector(values: np.ndarray) -> str:
    return json.dumps([float(f"{v:.8g}") for v in values.tolist()])


def _structured_cell(parts: Dict[str, str]) -> str:
    """One cell for a sample of a model with several outputs: ``{"name": cell, ...}``."""
    return "{" + ", ".join(f"{json.dumps(str(name))}: {text}" for name, text in parts.items()) + "}"


def cell(row_value: Any) -> str:
    """A report cell for one sample's array: scalars as they are, small vectors as JSON, big arrays by their mean.

    A dict (or list) of arrays, one per output of a model, gives one JSON object of their cells.
    """
    if isinstance(row_value, (dict, list, tuple)):
        items = row_value.items() if isinstance(row_value, dict) else enumerate(row_value)
        return _structured_cell({name: cell(part) for name, part in items})
    value = np.asarray(row_value)
    if value.size == 1:
        scalar = value.reshape(-1)[0]
        return str(scalar.item()) if np.issubdtype(value.dtype, np.integer) else repr(float(scalar))
    if value.ndim == 1 and value.size <= MAX_JSON_VALUES:
        return _json_vector(value)
    return repr(float(np.mean(value)))


def _prints_as_its_repr(values: np.ndarray) -> np.ndarray:
    """Per row: does ``%.8g`` of every value give ``repr`` of the value rounded to 8 digits?

    It does for finite non-zero values below 1e7 that do not round to an integer: larger ones
    ``%g`` writes with an exponent, integers without the ``.0``, and NaN and inf not as JSON
    does. Values near an integer are sent to the exact path, with room to spare.
    """
    magnitude = np.abs(values)
    with np.errstate(invalid="ignore"):
        plain = (np.isfinite(values) & (magnitude > 0) & (magnitude < 1e7)
                 & ~((magnitude >= 0.5) & (np.abs(values - np.rint(values)) <= 1e-7 * magnitude)))
    return plain.all(axis=1)


def json_vector_cells(rows: np.ndarray) -> List[str]:
    """:func:`cell` of each row of a 2-D batch of small vectors: one ``%`` format for the batch, not one per value."""
    values = np.asarray(rows, dtype=np.float64)
    if not len(values):
        return []
    template = "[" + ", ".join(["%.8g"] * values.shape[1]) + "]"
    cells = ("\n".join([template] * len(values)) % tuple(values.reshape(-1).tolist())).split("\n")
    for i in np.flatnonzero(~_prints_as_its_repr(values)).tolist():
        cells[i] = _json_vector(values[i])
    return cells


def cells(batch: Any) -> List[str]:
    """:func:`cell` of each row of a batch, formatted column-wise where the row kind allows."""
    if isinstance(batch, (dict, list, tuple)):
        items = list(batch.items() if isinstance(batch, dict) else enumerate(batch))
        columns = {name: cells(part) for name, part in items}
        return [_structured_cell({name: column[i] for name, column in columns.items()})
                for i in range(len(next(iter(columns.values()))))]
    values = np.asarray(batch)
    if values.ndim == 0:
        values = values.reshape(1)
    per_row = values[0].size if len(values) else 1
    if per_row == 1:
        flat = values.reshape(len(values))
        return list(map(str, flat.tolist())) if np.issubdtype(values.dtype, np.integer) else float_cells(flat)
    if values.ndim == 2 and per_row <= MAX_JSON_VALUES:
        return json_vector_cells(values)
    return [cell(v) for v in values]


_CSV_SPECIAL = (",", '"', "\r", "\n")


def _csv_quoted(column: List[str]) -> List[str]:
    """A column's cells as ``csv.writer`` (QUOTE_MINIMAL) writes them; most columns need no quotes at all."""
    joined = "\x00".join(column)
    if not any(char in joined for char in _CSV_SPECIAL):
        return column
    if not any(char in joined for char in _CSV_SPECIAL[1:]):
        # Only commas, as in the JSON vectors of y_pred: one test a cell, nothing to escape.
        return ['"' + c + '"' if "," in c else c for c in column]
    return ['"' + c.replace('"', '""') + '"' if any(char in c for char in _CSV_SPECIAL) else c for c in column]


def csv_lines(columns: List[List[str]]) -> str:
    """The CSV lines of the rows of ``columns`` (lists of cells), quoted as ``csv.writer`` does.

    Quoting is decided a column at a time, which is about 3x faster than ``csv.writer`` on a
    report batch. (Unlike ``csv.writer``, a row of one empty cell is written empty.)
    """
    return "".join(line + "\n" for line in map(",".join, zip(*map(_csv_quoted, columns))))


class ReportWriter:
    """Appends rows column-wise; nothing but the current batch is held in memory."""

    def __init__(self, path: pathlib.Path, fmt: str) -> None:
        self.path = path
        self.fmt = fmt
        self._file = None
        self._writer = None
        self.columns: Optional[List[str]] = None

    def write(self, columns: Dict[str, List[str]]) -> None:
        if self.columns is None:
            self.columns = list(columns)
            if self.fmt == "csv":
                self._file = open(self.path, "w", newline="")
                self._file.write(csv_lines([[c] for c in self.columns]))
        if self.fmt == "csv":
            self._file.write(csv_lines([columns[c] for c in self.columns]))
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.table({c: pa.array(columns[c], type=pa.string()) for c in self.columns})
            if self._writer is None:
                self._writer = pq.ParquetWriter(str(self.path), table.schema)
            self._writer.write_table(table)

    def close(self) -> None:
        if self.fmt == "csv" and self._file is not None:
            self._file.close()
        elif self._writer is not None:
            self._writer.close()
