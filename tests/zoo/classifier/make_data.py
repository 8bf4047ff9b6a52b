#!/usr/bin/env python
"""Generate the toy shapes dataset: 16x16 grayscale PNGs + labels.csv.

usage: python make_data.py OUT_DIR

OUT_DIR/images/img_0000.png ...
OUT_DIR/labels.csv   columns: image_id, label, split

Classes are deliberately imbalanced (ring >> bar >> cross).
"""
import csv
import os
import sys

import numpy as np
from PIL import Image

SIDE = 16
# (split, {label: count})
PLAN = [
    ("train", {"ring": 33, "bar": 17, "cross": 8}),
    ("val", {"ring": 15, "bar": 7, "cross": 4}),
    ("test", {"ring": 12, "bar": 6, "cross": 4}),
]


def draw_ring(rng):
    yy, xx = np.mgrid[:SIDE, :SIDE]
    cy, cx = rng.uniform(6, 10, size=2)
    r = rng.uniform(3.5, 5.5)
    d = np.hypot(yy - cy, xx - cx)
    return (np.abs(d - r) < 1.0).astype(np.float32)


def draw_bar(rng):
    img = np.zeros((SIDE, SIDE), np.float32)
    length, thick = rng.integers(8, 13), rng.integers(2, 4)
    r0, c0 = rng.integers(2, SIDE - 12), rng.integers(2, SIDE - 12)
    if rng.random() < 0.5:
        img[r0:r0 + thick, c0:c0 + length] = 1.0
    else:
        img[r0:r0 + length, c0:c0 + thick] = 1.0
    return img


def draw_cross(rng):
    img = np.zeros((SIDE, SIDE), np.float32)
    cy, cx = rng.integers(6, 10, size=2)
    arm = rng.integers(3, 6)
    img[cy - arm:cy + arm + 1, cx - 1:cx + 1] = 1.0
    img[cy - 1:cy + 1, cx - arm:cx + arm + 1] = 1.0
    return img


DRAW = {"ring": draw_ring, "bar": draw_bar, "cross": draw_cross}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    rng = np.random.default_rng(1234)

    rows = []
    k = 0
    for split, counts in PLAN:
        labels = [lab for lab, n in counts.items() for _ in range(n)]
        rng.shuffle(labels)
        for lab in labels:
            shape = DRAW[lab](rng) * rng.uniform(0.6, 1.0)
            img = 0.15 + 0.7 * shape + rng.normal(0, 0.07, (SIDE, SIDE))
            img = np.clip(img * 255, 0, 255).astype(np.uint8)
            name = f"img_{k:04d}.png"
            Image.fromarray(img).save(os.path.join(out, "images", name))
            rows.append((name, lab, split))
            k += 1

    with open(os.path.join(out, "labels.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image_id", "label", "split"])
        w.writerows(rows)


if __name__ == "__main__":
    main()
