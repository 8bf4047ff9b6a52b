"""Synthetic 'lesion' cases for the multitask project.

    python make_data.py OUT_DIR

writes, for each split:

    OUT_DIR/<split>/cases.csv            case_id,grade,site
    OUT_DIR/<split>/images/<case_id>.npy uint8 (32, 32)
    OUT_DIR/<split>/masks/<case_id>.npy  uint8 (32, 32), 0/1

grade 0: no lesion, 1: small lesion, 2: large lesion. Case numbers are ints, not in order.
Deterministic (one seed, .npy files have no timestamps).
"""
import os
import sys

import numpy as np

SIZE = 32
SPLITS = (("train", 48), ("validation", 16), ("test", 16))
SITES = ("UKE", "CHA", "LMU")


def _case(rng, grade):
    yy, xx = np.mgrid[:SIZE, :SIZE]
    image = rng.normal(60.0, 12.0, (SIZE, SIZE))
    mask = np.zeros((SIZE, SIZE), np.uint8)
    if grade > 0:
        radius = rng.uniform(2.5, 4.0) if grade == 1 else rng.uniform(6.0, 8.5)
        cy, cx = rng.uniform(radius + 1, SIZE - radius - 1, 2)
        dist2 = (yy - cy) ** 2 + (xx - cx) ** 2
        mask = (dist2 <= radius ** 2).astype(np.uint8)
        image = image + 110.0 * np.exp(-dist2 / (2.0 * (0.8 * radius) ** 2))
    return np.clip(image, 0, 255).astype(np.uint8), mask


def main(out_dir):
    rng = np.random.default_rng(20240611)
    total = sum(n for _, n in SPLITS)
    case_ids = rng.choice(np.arange(100000, 999999), size=total, replace=False)
    start = 0
    for split, n in SPLITS:
        folder = os.path.join(out_dir, split)
        os.makedirs(os.path.join(folder, "images"), exist_ok=True)
        os.makedirs(os.path.join(folder, "masks"), exist_ok=True)
        grades = np.arange(n) % 3
        rng.shuffle(grades)
        rows = ["case_id,grade,site"]
        for case_id, grade in zip(case_ids[start:start + n], grades):
            image, mask = _case(rng, int(grade))
            np.save(os.path.join(folder, "images", f"{case_id}.npy"), image)
            np.save(os.path.join(folder, "masks", f"{case_id}.npy"), mask)
            rows.append(f"{int(case_id)},{int(grade)},{SITES[int(case_id) % len(SITES)]}")
        with open(os.path.join(folder, "cases.csv"), "w") as f:
            f.write("\n".join(rows) + "\n")
        start += n


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python make_data.py OUT_DIR")
    main(sys.argv[1])
