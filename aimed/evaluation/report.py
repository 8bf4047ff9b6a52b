"""The per-datapoint report, written batch by batch as CSV (default) or Parquet."""

from __future__ import annotations

import csv
import pathlib
from typing import Dict, List, Optional

REPORT_NAMES = {"csv": "report.csv", "parquet": "report.parquet"}


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
                self._writer = csv.writer(self._file, lineterminator="\n")
                self._writer.writerow(self.columns)
        if self.fmt == "csv":
            self._writer.writerows(zip(*(columns[c] for c in self.columns)))
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
