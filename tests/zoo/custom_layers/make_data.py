"""Generate the glyph dataset: 16x16 strokes in four orientations.

Layout of OUT_DIR:
    glyphs.npy   uint8 array (N, 16, 16), all splits stacked
    index.csv    id,split,label,row   (row indexes glyphs.npy)

Labels: 0 horizontal, 1 vertical, 2 diagonal, 3 anti-diagonal.
"""
import csv
import sys
from pathlib import Path

import numpy as np

SIDE = 16
COUNTS = (("train", 56), ("validation", 30), ("test", 22))
LABELS = 4


def stroke(rng, label):
    canvas = rng.normal(20.0, 10.0, size=(SIDE, SIDE))
    length = rng.integers(7, 13)
    start = rng.integers(1, SIDE - length)
    offset = rng.integers(2, SIDE - 2)
    steps = np.arange(start, start + length)
    if label == 0:
        rows, cols = np.full_like(steps, offset), steps
    elif label == 1:
        rows, cols = steps, np.full_like(steps, offset)
    elif label == 2:
        rows, cols = steps, steps
    else:
        rows, cols = steps, SIDE - 1 - steps
    canvas[rows, cols] += rng.uniform(160.0, 230.0)
    return np.clip(canvas, 0, 255).astype(np.uint8)


def main():
    if len(sys.argv) != 2:
        raise SystemExit(f"usage: {sys.argv[0]} OUT_DIR")
    out_dir = Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)

    rng = np.random.default_rng(7)
    images, rows = [], []
    for split, count in COUNTS:
        labels = np.arange(count) % LABELS
        rng.shuffle(labels)
        for label in labels:
            row = len(images)
            images.append(stroke(rng, int(label)))
            glyph_id = f"{split[:2]}-{row:04d}-{rng.integers(16**3):03x}"
            rows.append((glyph_id, split, int(label), row))

    np.save(out_dir / "glyphs.npy", np.stack(images))
    with open(out_dir / "index.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "split", "label", "row"])
        writer.writerows(rows)


if __name__ == "__main__":
    main()
