"""Components used by the benchmarks only (copied into a benchmark project's ``src/`` as ``bench_components.py``).

- ``DataLoaderInMemory``: the tutorial's ``DataLoaderTF`` with every split decoded once into
  memory, so a training epoch measures the model, not the JPEG decoding (the compute floor of
  the input-pipeline benchmark).
- ``DataLoaderSynthetic``: ``data_loader.n`` random 28x28 images made on the fly, for the
  evaluation memory benchmark (nothing is held in memory).
- ``KerasLossEvaluator``: three eval functions written per-sample style, as in the tutorial,
  on Keras' functional losses.
"""

import pathlib

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from PIL import Image

from aimed import DataLoaderBase, EvaluatorBase

_DECODED = {}


def decoded_split(split_dir: pathlib.Path):
    """``(images uint8 N x 28 x 28 x 1, labels int64 N, names)`` of a split folder, decoded once per process."""
    key = str(split_dir)
    if key not in _DECODED:
        labels = pd.read_csv(split_dir / "labels.csv")
        names = labels["image name"].astype(str).tolist()
        images = np.stack([np.asarray(Image.open(split_dir / name)) for name in names])[..., None]
        _DECODED[key] = (images, labels["label"].to_numpy(np.int64), np.array(names))
    return _DECODED[key]


class DataLoaderInMemory(DataLoaderBase):
    def _load_params(self, config):
        self.shuffle = config.data_loader.shuffle

    def _set_defaults(self):
        self.shuffle = True

    def _dataset(self, split, third):
        images, labels, names = decoded_split(self.data_dir / split)
        thirds = names if third == "ids" else np.ones(len(labels), np.float32)
        return tf.data.Dataset.from_tensor_slices((images, labels, thirds)), len(labels)

    def create_training_generator(self):
        ds, n = self._dataset("train", "weights")
        return (ds.shuffle(n) if self.shuffle else ds), n

    def create_validation_generator(self):
        return self._dataset("validation", "weights")

    def create_test_generator(self):
        return self._dataset("test", "ids")

    def get_validation_index(self):
        return decoded_split(self.data_dir / "validation")[2]


class DataLoaderSynthetic(DataLoaderBase):
    def _load_params(self, config):
        self.n = int(config.data_loader.get("n", self.n))

    def _set_defaults(self):
        self.n = 1000

    def _dataset(self, ids):
        def make(i):
            image = tf.random.stateless_uniform([28, 28, 1], seed=tf.stack([i, i]), maxval=256, dtype=tf.int32)
            third = tf.strings.as_string(i) if ids else tf.constant(1.0)
            return tf.cast(image, tf.uint8), i % 10, third

        return tf.data.Dataset.range(self.n).map(make), self.n

    def create_training_generator(self):
        return self._dataset(False)

    def create_validation_generator(self):
        return self._dataset(False)

    def create_test_generator(self):
        return self._dataset(True)


def keras_loss_funcs():
    """Per-sample-style eval functions (tutorial contract: one data point per call)."""
    return {
        "sparse ce": lambda y_true, y_pred: keras.losses.sparse_categorical_crossentropy(y_true, y_pred).numpy(),
        "ce one-hot": lambda y_true, y_pred: keras.losses.categorical_crossentropy(
            keras.ops.one_hot(y_true, 10), y_pred).numpy(),
        "kl one-hot": lambda y_true, y_pred: keras.losses.kl_divergence(keras.ops.one_hot(y_true, 10), y_pred).numpy(),
    }


class KerasLossEvaluator(EvaluatorBase):
    def get_eval_funcs(self):
        return keras_loss_funcs()
