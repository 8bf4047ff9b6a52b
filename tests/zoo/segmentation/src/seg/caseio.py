"""Case-level file access for the phantom dataset."""
from pathlib import Path

import numpy as np
import pandas as pd

SPLIT_DIR_NAMES = {"train": "train", "validation": "val", "test": "test"}


def read_manifest(root):
    manifest = pd.read_csv(Path(root) / "manifest.csv")
    manifest["case_id"] = manifest["case_id"].astype(np.int64)
    return manifest.set_index("case_id", verify_integrity=True)


def case_ids(manifest, split):
    return manifest.index[manifest["split"] == SPLIT_DIR_NAMES[split]].to_numpy()


def read_case(root, case_id):
    root = Path(root)
    image = np.load(root / "images" / f"case_{case_id}.npy")
    mask = np.load(root / "masks" / f"case_{case_id}.npy")
    if image.shape != mask.shape:
        raise ValueError(f"case {case_id}: image {image.shape} vs mask {mask.shape}")
    return image, mask
