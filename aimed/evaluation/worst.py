"""The ``evaluation.worst_k`` worst samples of a split, by the ``evaluation.worst_by`` eval function."""

from __future__ import annotations

import dataclasses
import heapq
import re
from typing import Any, List, NamedTuple, Optional, Tuple

import numpy as np

from aimed.data import row_of, structure_map
from aimed.evaluation.report import cell


@dataclasses.dataclass(frozen=True)
class WorstSample:
    """One of the worst samples of a split, for the worst-samples grid."""

    value: float  # its worst_by value
    row: int
    x: Any
    y_true: str  # the report's cells
    y_pred: str
    data_id: str
    #: ``(true mask, predicted mask)`` of a segmentation model, shown beside the image.
    masks: Optional[Tuple[np.ndarray, np.ndarray]] = None


class _Ranked(NamedTuple):
    """A heap entry; ``row`` breaks ties, so two entries never compare their samples."""

    rank: float  # the value, signed so that the worst is the highest
    row: int
    sample: WorstSample


#: Words in an eval function's name that say which values are good, when it declares no ``direction``.
HIGHER_IS_BETTER = frozenset({"dice", "iou", "jaccard", "acc", "accuracy", "precision", "recall", "sensitivity",
                              "specificity", "tpr", "tnr", "f1", "auc", "score", "correct", "overlap", "similarity",
                              "ssim", "psnr", "hit"})
LOWER_IS_BETTER = frozenset({"loss", "error", "err", "mae", "mse", "rmse", "distance", "dist", "hausdorff", "ce", "nll",
                             "crossentropy", "entropy", "deviation", "bias"})


def worst_direction(setting: Optional[str], func: Any, name: Optional[str] = None) -> Tuple[str, str]:
    """``("min" or "max", why)``: whether the lowest or the highest values are the worst, and what said so.

    The ``evaluation.worst_direction`` setting; else the opposite of the function's declared
    ``direction`` (what is better, as the functions of :mod:`aimed.metrics` declare); else the
    words of its name (``error``, ``loss``: lower is better, which wins over ``dice``, ``accuracy``:
    higher is better); else ``"max"`` (a loss: the highest is the worst).
    """
    if setting:
        return setting, "evaluation.worst_direction"
    better = getattr(getattr(func, "func", func), "direction", None)
    if better in ("max", "min"):
        return {"max": "min", "min": "max"}[better], f"the function declares direction '{better}'"
    words = set(re.split(r"[^a-z0-9]+", (name or "").lower()))
    if words & LOWER_IS_BETTER:  # before the other: "dice_loss" is 1 - dice
        return "max", f"its name: lower '{name}' is better"
    if words & HIGHER_IS_BETTER:
        return "min", f"its name: higher '{name}' is better"
    return "max", "the default (the highest is the worst, as for a loss); set evaluation.worst_direction"


def _is_segmentation(y_true: Any, y_pred: Any) -> bool:
    """Outputs and labels with spatial axes: ``[B, H, W(, C)]`` masks."""
    return (isinstance(y_pred, np.ndarray) and isinstance(y_true, np.ndarray) and y_pred.ndim >= 3
            and y_true.shape[1:3] == y_pred.shape[1:3])


def _masks(y_true: Any, y_pred: Any) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """The batch's ``(true, predicted)`` masks: of the model's output, or of its first output that is a
    mask when it has several (a segmentation head beside a classification head); ``None`` if none is."""
    if isinstance(y_true, dict) and isinstance(y_pred, dict):
        pairs = [(y_true[key], y_pred[key]) for key in y_pred if key in y_true]
    elif isinstance(y_true, (list, tuple)) and isinstance(y_pred, (list, tuple)):
        pairs = list(zip(y_true, y_pred))
    else:
        pairs = [(y_true, y_pred)]
    return next(((t, p) for t, p in pairs if _is_segmentation(t, p)), None)


class WorstSamples:
    """The ``k`` worst samples: the lowest or highest values (NaN and inf count as worst; ties: the later sample)."""

    def __init__(self, k: int, direction: str = "max") -> None:
        self.k = k
        self.sign = 1.0 if direction == "max" else -1.0
        self.heap: List[_Ranked] = []

    def add(self, values: np.ndarray, first_row: int, x: Any, y_true: Any, y_pred: Any, ids: List[str]) -> None:
        """Consider one batch; ``y_true`` and ``y_pred`` are what the report shows (classes, for a classifier)."""
        ranks = self.sign * values
        ranks = np.where(np.isfinite(ranks), ranks, np.inf)
        masks = _masks(y_true, y_pred)
        # Only the batch's own worst k can enter the heap: the rest need no record and no image copy.
        for i in np.lexsort((np.arange(len(ranks)), ranks))[-self.k:].tolist():
            rank, row = float(ranks[i]), first_row + i
            if len(self.heap) < self.k or (rank, row) > (self.heap[0].rank, self.heap[0].row):
                sample = WorstSample(float(values[i]), row, structure_map(np.array, row_of(x, i)),
                                     cell(row_of(y_true, i)), cell(row_of(y_pred, i)), ids[i],
                                     None if masks is None else (np.array(masks[0][i]), np.array(masks[1][i])))
                (heapq.heappush if len(self.heap) < self.k else heapq.heapreplace)(self.heap, _Ranked(rank, row, sample))

    def result(self) -> List[WorstSample]:
        """The samples, worst first."""
        return [entry.sample for entry in sorted(self.heap, key=lambda entry: (entry.rank, entry.row), reverse=True)]
