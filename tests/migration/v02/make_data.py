"""Writes the tiny synthetic echo dataset used by the legacy-v02 run.

    python make_data.py OUT_DIR

Every case is a 32x32 single-channel "ultrasound-like" frame: speckled tissue with a dark
elliptical cavity surrounded by a bright wall, plus the binary cavity mask.

    OUT_DIR/
        index.csv                      case_id,split,image,mask (paths relative to OUT_DIR)
        train/case_1000_image.npy      uint8 (32, 32)
        train/case_1000_mask.npy       uint8 (32, 32), values {0, 1}
        ...
        validation/...
        test/...

Only numpy is used, and the output is byte-identical from one run to the next.
"""

import pathlib
import sys

import numpy as np

SIZE = 32
SEED = 20210915
SPLITS = (('train', 40, 1000), ('validation', 18, 2000), ('test', 17, 3000))


def make_case(rng):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)

    cy, cx = rng.uniform(11.0, 21.0, size=2)
    a = rng.uniform(5.0, 9.0)
    b = rng.uniform(4.0, 7.0)
    theta = rng.uniform(0.0, np.pi)

    dy, dx = yy - cy, xx - cx
    u = dx * np.cos(theta) + dy * np.sin(theta)
    v = -dx * np.sin(theta) + dy * np.cos(theta)
    r = (u / a) ** 2 + (v / b) ** 2

    mask = (r <= 1.0).astype(np.uint8)

    tissue = np.full((SIZE, SIZE), 0.45)
    tissue[(r > 1.0) & (r <= 1.7)] = 0.85   # bright wall
    tissue[r <= 1.0] = 0.08                  # dark cavity
    tissue *= 1.0 - 0.3 * yy / (SIZE - 1)    # depth attenuation

    speckle = rng.rayleigh(scale=0.8, size=(SIZE, SIZE))
    image = tissue * speckle + rng.normal(0.0, 0.03, size=(SIZE, SIZE))
    image = np.clip(image, 0.0, 1.0)
    image = np.round(image * 255.0).astype(np.uint8)

    return image, mask


def main(out_dir):
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)

    rows = ['case_id,split,image,mask']
    for split, n_cases, first_id in SPLITS:
        split_dir = out_dir / split
        split_dir.mkdir(exist_ok=True)
        for case_id in range(first_id, first_id + n_cases):
            image, mask = make_case(rng)
            image_name = f'{split}/case_{case_id}_image.npy'
            mask_name = f'{split}/case_{case_id}_mask.npy'
            np.save(out_dir / image_name, image)
            np.save(out_dir / mask_name, mask)
            rows.append(f'{case_id},{split},{image_name},{mask_name}')

    (out_dir / 'index.csv').write_text('\n'.join(rows) + '\n')


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit('usage: python make_data.py OUT_DIR')
    main(sys.argv[1])
