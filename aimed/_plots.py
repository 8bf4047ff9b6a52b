"""PNG plots, drawn with matplotlib's non-interactive Agg backend."""

from __future__ import annotations

import io
import math
import pathlib
from typing import Any, Optional, Sequence

import numpy as np

from aimed._io import atomic_write_bytes


def _as_image(x: Any, height: int, width: int) -> Optional[np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = max(1, len(images))
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.8 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, x, title in zip(axes.flat, images, titles):
        image = _as_image(x, height, width)
        if image is None:
            ax.plot(np.asarray(x, dtype=np.float64).reshape(-1))
            ax.axis("on")
        else:
            lo, hi = float(np.min(image)), float(np.max(image))
            shown = (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)
            ax.imshow(shown, cmap="gray" if shown.ndim == 2 else None, vmin=0, vmax=1)
        ax.set_title(title, fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
