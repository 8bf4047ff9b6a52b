"""Writes the tiny synthetic clinical cohort: `python make_data.py OUT_DIR`.

OUT_DIR/{train,validation,test}/
    scans/P-xxxxx.png    24x24 grayscale "scan"
    clinical.csv         patient_id, scan_file, age, sex, crp, wbc, hb, lactate, diagnosis

Diagnoses 0/1/2 are imbalanced (about 60/25/15 %); both the scan (a bright lesion whose size
grows with the diagnosis) and the lab values carry signal. Deterministic: numpy's seeded
generator and PIL's PNG writer only.
"""

import pathlib
import sys

import numpy as np
import pandas as pd
from PIL import Image

SIZE = 24
SPLITS = {"train": 90, "validation": 30, "test": 30}
PREVALENCE = (0.60, 0.25, 0.15)


def make_scan(rng, diagnosis):
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    img = rng.normal(60, 12, size=(SIZE, SIZE))
    cy, cx = rng.integers(7, SIZE - 7, size=2)
    radius = 2.0 + 2.0 * diagnosis + rng.uniform(-0.5, 0.5)
    img[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2] += 120
    return np.clip(img, 0, 255).astype(np.uint8)


def main(out_dir):
    out = pathlib.Path(out_dir)
    rng = np.random.default_rng(20240517)
    n_total = sum(SPLITS.values())
    patient_numbers = rng.permutation(np.arange(1, 10 * n_total))[:n_total]
    start = 0
    for split, n in SPLITS.items():
        scans = out / split / "scans"
        scans.mkdir(parents=True, exist_ok=True)
        counts = np.round(np.array(PREVALENCE) * n).astype(int)
        counts[0] = n - counts[1:].sum()
        diagnoses = rng.permutation(np.repeat(np.arange(3), counts))
        rows = []
        for i, diagnosis in enumerate(diagnoses):
            pid = f"P-{patient_numbers[start + i]:05d}"
            Image.fromarray(make_scan(rng, diagnosis)).save(scans / f"{pid}.png")
            rows.append({
                "patient_id": pid,
                "scan_file": f"scans/{pid}.png",
                "age": int(rng.normal(55 + 6 * diagnosis, 10)),
                "sex": "F" if rng.random() < 0.5 else "M",
                "crp": round(float(rng.lognormal(1.0 + 0.6 * diagnosis, 0.4)), 2),
                "wbc": round(float(rng.normal(7.0 + 1.5 * diagnosis, 1.2)), 2),
                "hb": round(float(rng.normal(14.0 - 0.8 * diagnosis, 1.0)), 2),
                "lactate": round(float(rng.normal(1.2 + 0.5 * diagnosis, 0.3)), 2),
                "diagnosis": int(diagnosis),
            })
        start += n
        pd.DataFrame(rows).to_csv(out / split / "clinical.csv", index=False)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python make_data.py OUT_DIR")
    main(sys.argv[1])
