#!/usr/bin/env python
"""Write tiny RGB PNG tiles and a labels.csv next to them.

    python make_data.py OUT_DIR

OUT_DIR/
  labels.csv                 id,split,path,label,source
  <split>/<id>.png           16x16 RGB tiles

The class is the dominant colour channel of a soft spot in the tile
(0 red, 1 green, 2 blue); "source" says which of two simulated cameras
took the picture (cam_b is darker and noisier).
"""
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

SEED = 4242
HW = 16
SPLITS = [("train", 56), ("val", 26), ("test", 27)]
SOURCES = {"cam_a": (1.0, 6.0), "cam_b": (0.7, 14.0)}


def tile(rng, label, gain, noise):
    yy, xx = np.mgrid[:HW, :HW]
    cy, cx = rng.uniform(4, HW - 4, size=2)
    spot = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * rng.uniform(2.0, 3.5) ** 2))
    rgb = np.full((HW, HW, 3), 40.0)
    rgb[..., label] += 190.0 * spot
    rgb = rgb * gain + rng.normal(0.0, noise, size=rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def main(out_dir: Path) -> None:
    rng = np.random.default_rng(SEED)
    records = []
    for split, n in SPLITS:
        (out_dir / split).mkdir(parents=True, exist_ok=True)
        for k in range(n):
            label = int(rng.integers(3))
            source = "cam_a" if rng.random() < 0.6 else "cam_b"
            image_id = f"{split}_{k:03d}_{source[-1]}"
            rel = f"{split}/{image_id}.png"
            Image.fromarray(tile(rng, label, *SOURCES[source])).save(out_dir / rel)
            records.append((image_id, split, rel, label, source))
    table = pd.DataFrame(records, columns=["id", "split", "path", "label", "source"])
    table.to_csv(out_dir / "labels.csv", index=False)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
