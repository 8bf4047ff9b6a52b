"""Synthetic 'phantom' CT slices with circular and rectangular lesions.

Usage: python make_data.py OUT_DIR

Writes, per case number N:
    OUT_DIR/images/case_N.npy   int16 (32, 32), Hounsfield-like intensities
    OUT_DIR/masks/case_N.npy    uint8 (32, 32), 1 = lesion
and OUT_DIR/manifest.csv with columns case_id, split, kind, n_lesions.
"""
import sys
from pathlib import Path

import numpy as np
import pandas as pd

SIZE = 32
FIRST_CASE = 1001
SPLITS = [("train", 56), ("val", 26), ("test", 22)]
SEED = 314159


def lesion(rng, yy, xx):
    if rng.random() < 0.5:
        cy, cx = rng.uniform(7, SIZE - 7, size=2)
        r = rng.uniform(3.0, 7.0)
        return "circle", (yy - cy) ** 2 + (xx - cx) ** 2 <= r ** 2
    h, w = rng.integers(5, 13, size=2)
    top, left = rng.integers(2, SIZE - 2 - h), rng.integers(2, SIZE - 2 - w)
    box = np.zeros((SIZE, SIZE), bool)
    box[top:top + h, left:left + w] = True
    return "rectangle", box


def phantom(rng):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    n_lesions = int(rng.choice([0, 1, 1, 1, 2, 2]))
    mask = np.zeros((SIZE, SIZE), bool)
    kinds = []
    for _ in range(n_lesions):
        kind, region = lesion(rng, yy, xx)
        mask |= region
        kinds.append(kind)
    # soft tissue background with a gentle gradient, brighter lesions, acquisition noise
    gy, gx = rng.normal(0.0, 0.8, size=2)
    image = 30.0 + gy * (yy - SIZE / 2) + gx * (xx - SIZE / 2)
    image += mask * rng.uniform(90.0, 160.0)
    image += rng.normal(0.0, 22.0, size=image.shape)
    kind = "+".join(sorted(set(kinds))) or "none"
    return image.round().astype(np.int16), mask.astype(np.uint8), kind, n_lesions


def main(out_dir):
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    rows = []
    case_id = FIRST_CASE
    for split, n in SPLITS:
        for _ in range(n):
            image, mask, kind, n_lesions = phantom(rng)
            np.save(out / "images" / f"case_{case_id}.npy", image)
            np.save(out / "masks" / f"case_{case_id}.npy", mask)
            rows.append({"case_id": case_id, "split": split, "kind": kind, "n_lesions": n_lesions})
            case_id += 1
    pd.DataFrame(rows).to_csv(out / "manifest.csv", index=False)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
