"""Write the toy "blobs" dataset: 12x12 grayscale images, each holding one shape.

Every image carries two targets: the radius of the shape (a float, in pixels)
and its kind (0 = disk, 1 = square, 2 = ring).

    python make_data.py OUT_DIR
"""
import sys
from pathlib import Path

import numpy as np

SIZE = 12
SPLITS = {"train": 60, "val": 26, "test": 21}


def draw(rng, kind, radius):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    cy, cx = rng.uniform(radius - 0.5, SIZE - radius - 0.5, size=2)
    if kind == 0:
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
    elif kind == 1:
        mask = (np.abs(yy - cy) <= radius) & (np.abs(xx - cx) <= radius)
    else:
        dist = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
        mask = np.abs(dist - radius) <= 0.8
    level = rng.uniform(150, 240)
    img = rng.normal(25, 8, size=(SIZE, SIZE)) + mask * level
    return np.clip(img, 0, 255).astype(np.uint8)


def make_split(rng, n, first_id):
    kinds = rng.integers(0, 3, size=n)
    radii = rng.uniform(1.5, 4.5, size=n).astype(np.float32)
    images = np.stack([draw(rng, k, r) for k, r in zip(kinds, radii)])
    ids = np.arange(first_id, first_id + n, dtype=np.int64) * 7 + 3
    return {"images": images, "radius": radii, "kind": kinds.astype(np.int64), "ids": ids}


def main(out_dir):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240611)
    first_id = 1000
    for split, n in SPLITS.items():
        np.savez(out / f"{split}.npz", **make_split(rng, n, first_id))
        first_id += n
    print(f"wrote {sum(SPLITS.values())} blobs to {out}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python make_data.py OUT_DIR")
    main(sys.argv[1])
