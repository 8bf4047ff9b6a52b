"""On-disk layout: one ``<split>.npz`` per split with images, labels and ids."""
import numpy as np

FILES = {"train": "train.npz", "validation": "val.npz", "test": "test.npz"}


def read_split(data_dir, split):
    path = data_dir / FILES[split]
    with np.load(path) as archive:
        images = archive["images"]
        labels = archive["labels"].astype(np.int64)
        ids = archive["ids"].astype(str)
    if images.ndim != 3 or len(images) != len(labels) or len(labels) != len(ids):
        raise ValueError(f"{path}: inconsistent arrays {images.shape}, {labels.shape}, {ids.shape}")
    return images, labels, ids
