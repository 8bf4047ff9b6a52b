"""PNG plots, drawn with matplotlib's non-interactive Agg backend."""

from __future__ import annotations

import io
import math
import pathlib
from typing import Any, List, Optional, Sequence

import numpy as np

from aimed._io import atomic_write_bytes


def _leaves(x: Any) -> List[np.ndarray]:
    """The arrays of one sample's x: itself, or each input of a model with several (a dict or list)."""
    parts = list(x.values()) if isinstance(x, dict) else list(x) if isinstance(x, (list, tuple)) else [x]
    return [np.asarray(part, dtype=np.float64) for part in parts]


def _as_image(x: Any, height: int, width: int) -> Optional[np.ndarray]:
    """One sample's x as a 2-D (or RGB) image; of several inputs, the first that is an image (most axes first)."""
    for leaf in sorted(_leaves(x), key=lambda leaf: -leaf.ndim):
        image = _leaf_image(leaf, height, width)
        if image is not None:
            return image
    return None


def _leaf_image(x: np.ndarray, height: int, width: int) -> Optional[np.ndarray]:
    if x.ndim == 3 and x.shape[-1] in (1, 3, 4):
        return x[..., 0] if x.shape[-1] == 1 else x[..., :3]
    if x.ndim == 2:
        return x
    if x.size == height * width:
        return x.reshape(height, width)
    return None


def save_image_grid(
    path: pathlib.Path, images: Sequence[Any], titles: Sequence[str], height: int, width: int, columns: int = 8
) -> None:
    """Draw ``images`` (flat or 2-D/3-D arrays) in a grid with a title each, and save a PNG atomically."""
    plt = _pyplot()
    count = max(1, len(images))
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.9 * columns, 2.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, x, title in zip(axes.flat, images, titles):
        image = _as_image(x, height, width)
        if image is None:
            ax.plot(np.concatenate([leaf.reshape(-1) for leaf in _leaves(x)]))
            ax.axis("on")
        else:
            lo, hi = float(np.min(image)), float(np.max(image))
            shown = (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)
            ax.imshow(shown, cmap="gray" if shown.ndim == 2 else None, vmin=0, vmax=1)
        ax.set_title(title, fontsize=7)
    _figure_to_png(fig, path)


def _figure_to_png(fig, path: pathlib.Path) -> None:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_training_curves(path: pathlib.Path, history: Any) -> None:
    """One panel per metric of a history DataFrame, training and validation together, against epoch."""
    plt = _pyplot()
    names = [c for c in history.columns if c != "epoch" and not c.startswith("val_")]
    fig, axes = plt.subplots(1, max(1, len(names)), figsize=(4.5 * max(1, len(names)), 3.4), squeeze=False)
    for ax, name in zip(axes.flat, names):
        ax.plot(history["epoch"], history[name], marker="o", label="train")
        if f"val_{name}" in history.columns:
            ax.plot(history["epoch"], history[f"val_{name}"], marker="o", label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.legend()
    _figure_to_png(fig, path)


def save_confusion_matrix(path: pathlib.Path, confusion: Optional[np.ndarray], title: str) -> None:
    """A confusion matrix heat map with counts (rows are true classes), or a note for non-classifiers."""
    plt = _pyplot()
    if confusion is None:
        fig, ax = plt.subplots(figsize=(4, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, "not a classification output:\nno confusion matrix", ha="center", va="center")
        _figure_to_png(fig, path)
        return
    size = len(confusion)
    fig, ax = plt.subplots(figsize=(1.0 + 0.5 * size, 0.8 + 0.5 * size))
    ax.imshow(confusion, cmap="Blues")
    for i in range(size):
        for j in range(size):
            ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if confusion[i, j] > confusion.max() / 2 else "black")
    ax.set_xticks(range(size))
    ax.set_yticks(range(size))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    _figure_to_png(fig, path)


def save_histogram(path: pathlib.Path, values: np.ndarray, title: str) -> None:
    """A histogram of the finite values of one per-sample metric."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    finite = values[np.isfinite(values)]
    ax.hist(finite, bins=min(50, max(5, finite.size // 10 or 5)))
    ax.set_title(title)
    ax.set_ylabel("samples")
    _figure_to_png(fig, path)
