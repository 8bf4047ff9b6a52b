"""Pixel weight maps that emphasise lesion boundaries (U-Net style)."""
import numpy as np


def _dilate(mask, steps):
    out = mask.astype(bool)
    for _ in range(steps):
        p = np.pad(out, 1)
        out = p[1:-1, 1:-1] | p[:-2, 1:-1] | p[2:, 1:-1] | p[1:-1, :-2] | p[1:-1, 2:]
    return out


def _erode(mask, steps):
    return ~_dilate(~mask.astype(bool), steps)


def boundary(mask, width=1):
    """Pixels within `width` of the lesion contour, on either side."""
    return _dilate(mask, width) & ~_erode(mask, width)


def boundary_weight_map(mask, foreground_weight=1.0, border_weight=1.0, width=1):
    """w = 1 on background, foreground_weight inside, border_weight on the contour; mean(w) == 1."""
    fg = mask.astype(bool)
    w = np.ones(fg.shape, np.float32)
    w[fg] = foreground_weight
    w[boundary(fg, width)] = border_weight
    return (w / w.mean()).astype(np.float32)
