"""The DataLoader's metadata columns of the evaluation report."""

from __future__ import annotations

from typing import Any, Dict, List

import numpy as np

from aimed.data import decode_ids
from aimed.errors import StageFailed


class Metadata:
    """The DataLoader's metadata columns, looked up for a batch's ids at once ("" for an unknown id)."""

    def __init__(self, frame: Any, split: str) -> None:
        """``frame``: what ``get_metadata(split)`` returned, a pandas DataFrame indexed by data id."""
        # Report ids are strings; an index of numbers or bytes would otherwise match no row.
        self.frame = frame.set_axis(decode_ids(frame.index), axis=0)
        if not self.frame.index.is_unique:
            duplicated = self.frame.index[self.frame.index.duplicated()].unique().tolist()[:5]
            raise StageFailed(f"get_metadata('{split}') has more than one row for the data ids {duplicated}.")
        # Numpy scalars, not Python ones, so a float32 column reads as it prints (0.1, not 0.10000000149011612).
        self.values = {column: self.frame[column].to_numpy() if isinstance(self.frame[column].dtype, np.dtype)
                       else self.frame[column].array for column in self.frame.columns}

    def columns(self, ids: List[str]) -> Dict[str, List[str]]:
        """``{column: cells}`` of the rows of ``ids``, in their order."""
        positions = self.frame.index.get_indexer(ids)
        known = positions >= 0
        out = {}
        for column, values in self.values.items():
            found = iter(values[positions[known]])
            out[column] = [str(next(found)) if k else "" for k in known.tolist()]
        return out
