"""The plots of a split's evaluation: confusion matrix, one histogram per eval function, worst samples."""

from __future__ import annotations

import pathlib

from aimed.evaluation.split import SplitResult
from aimed.evaluation.summary import safe_name

#: Longest report cell shown in a worst-sample title; a cell of several outputs (JSON) is cut here.
TITLE_CELL_CHARS = 24


def _brief(cell: str) -> str:
    """A report cell short enough for a title: a number to 4 significant digits, other text cut."""
    try:
        return f"{float(cell):.4g}"
    except ValueError:
        return cell if len(cell) <= TITLE_CELL_CHARS else cell[:TITLE_CELL_CHARS - 1] + "…"


def write_plots(out: pathlib.Path, result: SplitResult, split: str, height: int, width: int) -> None:
    """Write ``out/plots/`` (which must not exist yet); ``height`` and ``width``: the input images' size."""
    from aimed._plots import save_confusion_matrix, save_histogram, save_image_grid

    plots = out / "plots"
    plots.mkdir()
    save_confusion_matrix(plots / "confusion_matrix.png", result.confusion, f"{split}: confusion matrix")
    for name, values in result.values.items():
        save_histogram(plots / f"hist_{safe_name(name)}.png", values, f"{split}: {name}")
    images, titles = [], []
    segmentation = any(w.masks is not None for w in result.worst)
    for w in result.worst:
        if segmentation:  # image, true mask, predicted mask side by side
            images += [w.x, *w.masks]
            titles += [f"{w.data_id}\n{result.worst_by}={w.value:.3g}", "true mask", "predicted mask"]
        else:
            images.append(w.x)
            titles.append(f"{w.data_id}\ntrue {_brief(w.y_true)} pred {_brief(w.y_pred)}\n{result.worst_by}={w.value:.3g}")
    save_image_grid(plots / "worst.png", images, titles, height, width, columns=6 if segmentation else 8)
