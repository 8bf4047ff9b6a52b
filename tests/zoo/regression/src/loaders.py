"""Loaders for the blob dataset (train.npz / val.npz / test.npz in data_dir)."""
import numpy as np
import tensorflow as tf

from aimed import DataLoaderBase
from features import stretch_contrast

SPLIT_FILES = {"train": "train.npz", "validation": "val.npz", "test": "test.npz"}


def read_split(data_dir, split):
    with np.load(data_dir / SPLIT_FILES[split]) as arrays:
        blobs = {key: arrays[key] for key in arrays.files}
    blobs["images"] = stretch_contrast(blobs["images"])
    return blobs


class RadiusGeneratorLoader(DataLoaderBase):
    """Plain-Python generators yielding (image, [radius], weight) or (image, [radius], id)."""

    def _set_defaults(self):
        super()._set_defaults()
        self.shuffle = True
        self.seed = 0

    def _load_params(self, config):
        super()._load_params(config)
        self.shuffle = bool(config.data_loader.get("shuffle", self.shuffle))
        self.seed = int(config.get("seed") or 0)

    def _points(self, split):
        blobs = read_split(self.data_dir, split)
        targets = blobs["radius"].reshape(-1, 1).astype(np.float32)
        return blobs["images"], targets, blobs["ids"]

    def create_training_generator(self):
        images, targets, _ = self._points("train")
        rng = np.random.default_rng(self.seed)

        def endless():
            while True:
                order = rng.permutation(len(images)) if self.shuffle else range(len(images))
                for i in order:
                    yield images[i], targets[i], np.float32(1.0)

        return endless(), len(images)

    def create_validation_generator(self):
        images, targets, _ = self._points("validation")
        one_pass = ((images[i], targets[i], np.float32(1.0)) for i in range(len(images)))
        return one_pass, len(images)

    def create_test_generator(self):
        images, targets, ids = self._points("test")
        one_pass = ((images[i], targets[i], ids[i]) for i in range(len(images)))
        return one_pass, len(images)

    def get_validation_index(self):
        return list(self._points("validation")[2])


class SizeKindDatasetLoader(DataLoaderBase):
    """tf.data pipelines with a dict target {"size": radius, "kind": shape class}."""

    def _set_defaults(self):
        super()._set_defaults()
        self.shuffle_buffer = 128
        self.seed = 0

    def _load_params(self, config):
        super()._load_params(config)
        self.shuffle_buffer = int(config.data_loader.get("shuffle_buffer", self.shuffle_buffer))
        self.seed = int(config.get("seed") or 0)

    def _dataset(self, split, third):
        blobs = read_split(self.data_dir, split)
        n = len(blobs["ids"])
        targets = {"size": blobs["radius"].astype(np.float32), "kind": blobs["kind"]}
        if third == "ids":
            extra = blobs["ids"]
        else:
            extra = np.ones(n, dtype=np.float32)
        return tf.data.Dataset.from_tensor_slices((blobs["images"], targets, extra)), n

    def create_training_generator(self):
        ds, n = self._dataset("train", "weights")
        ds = ds.shuffle(self.shuffle_buffer, seed=self.seed, reshuffle_each_iteration=True)
        return ds.repeat(), n

    def create_validation_generator(self):
        return self._dataset("validation", "weights")

    def create_test_generator(self):
        return self._dataset("test", "ids")

    def get_validation_index(self):
        return read_split(self.data_dir, "validation")["ids"].tolist()
