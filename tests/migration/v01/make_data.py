"""Writes the tiny "bars" dataset used by the legacy-v01 run.

    python make_data.py OUT_DIR

OUT_DIR/
    train/       48 images + labels.csv
    validation/  24 images + labels.csv   (patient 11 has two scans: s1 and s2)
    test/        21 images + labels.csv

16x16 grayscale PNGs, 3 classes:
    0 -> horizontal bar, 1 -> vertical bar, 2 -> hollow square
All three classes are invariant to horizontal/vertical flips.

Only numpy and Pillow, fixed seed: running it twice gives byte-identical files.
"""

import pathlib
import sys

import numpy as np
from PIL import Image

SIZE = 16
N_CLASSES = 3
SEED = 2021


def draw(rng, label):
    img = rng.integers(0, 40, size=(SIZE, SIZE)).astype(np.uint8)
    value = int(rng.integers(190, 256))
    if label == 0:  # horizontal bar
        length = int(rng.integers(9, 14))
        r = int(rng.integers(2, SIZE - 4))
        c = int(rng.integers(0, SIZE - length + 1))
        img[r:r + 2, c:c + length] = value
    elif label == 1:  # vertical bar
        length = int(rng.integers(9, 14))
        c = int(rng.integers(2, SIZE - 4))
        r = int(rng.integers(0, SIZE - length + 1))
        img[r:r + length, c:c + 2] = value
    else:  # hollow square
        side = int(rng.integers(6, 11))
        r = int(rng.integers(0, SIZE - side + 1))
        c = int(rng.integers(0, SIZE - side + 1))
        img[r, c:c + side] = value
        img[r + side - 1, c:c + side] = value
        img[r:r + side, c] = value
        img[r:r + side, c + side - 1] = value
    return img


def write_split(rng, split_dir, names):
    split_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, name in enumerate(names):
        label = i % N_CLASSES
        Image.fromarray(draw(rng, label)).save(split_dir / name, format='PNG')
        rows.append(f'{name},{label}')
    (split_dir / 'labels.csv').write_text('image name,label\n' + '\n'.join(rows) + '\n')


def main(out_dir):
    out_dir = pathlib.Path(out_dir)
    rng = np.random.default_rng(SEED)

    write_split(rng, out_dir / 'train', [f'train_{i:03d}.png' for i in range(48)])

    # 23 patients, one scan each, except patient 11 who was scanned twice
    val_names = []
    for p in range(23):
        val_names.append(f'val_p{p:02d}_s1.png')
        if p == 11:
            val_names.append(f'val_p{p:02d}_s2.png')
    write_split(rng, out_dir / 'validation', val_names)

    write_split(rng, out_dir / 'test', [f'test_{i:03d}.png' for i in range(21)])


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit('usage: python make_data.py OUT_DIR')
    main(sys.argv[1])
