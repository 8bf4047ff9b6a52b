"""The sample grid of the check: the first images of a batch, titled with their labels."""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

import numpy as np

from aimed.preprocessing_check.shapes import structured

SAMPLES_SHOWN = 16


def sample_images(batch: Optional[Tuple[Any, Any]]) -> Tuple[List[Any], List[str]]:
    """The first ``SAMPLES_SHOWN`` images of an ``(x, y)`` batch and their titles; none for structured x."""
    images, titles = [], []
    if batch is not None and not structured(batch[0]):
        x, y = batch
        for index, xi in enumerate(list(x)[:SAMPLES_SHOWN]):
            yi = {k: np.asarray(v)[index] for k, v in y.items()} if isinstance(y, dict) else np.asarray(y)[index]
            images.append(xi)
            titles.append(f"y={_label_title(yi)}")
    return images, titles


def _label_title(label: Any) -> str:
    if isinstance(label, dict):
        return ",".join(f"{k}:{_label_title(v)}" for k, v in label.items())
    value = np.asarray(label)
    if value.size <= 3:
        if np.issubdtype(value.dtype, np.integer) or value.dtype == bool:
            return str(value.tolist())
        texts = [f"{v:.4g}" for v in value.reshape(-1).tolist()]  # float32's repr noise would fill the title
        return texts[0] if value.ndim == 0 or value.size == 1 else f"[{', '.join(texts)}]"
    return f"mean {value.mean():.2g}" if value.ndim > 1 else str(int(np.argmax(value)))
