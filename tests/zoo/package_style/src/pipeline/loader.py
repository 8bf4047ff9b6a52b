import numpy as np
import pandas as pd
import tensorflow as tf

from aimed import DataLoaderBase
from common.labels import DIGITS

from . import storage


class DigitLoader(DataLoaderBase):
    """tf.data sources over the npz splits."""

    def _set_defaults(self):
        self.shuffle_buffer = 128

    def _load_params(self, config):
        self.shuffle_buffer = int(config.data_loader.get("shuffle_buffer", self.shuffle_buffer))

    def _weighted(self, split):
        images, labels, _ = storage.read_split(self.data_dir, split)
        weights = np.ones(len(labels), np.float32)
        return tf.data.Dataset.from_tensor_slices((images, labels, weights)), len(labels)

    def create_training_generator(self):
        dataset, n = self._weighted("train")
        dataset = dataset.shuffle(min(self.shuffle_buffer, n), reshuffle_each_iteration=True)
        return dataset, n

    def create_validation_generator(self):
        return self._weighted("validation")

    def create_test_generator(self):
        images, labels, ids = storage.read_split(self.data_dir, "test")
        return tf.data.Dataset.from_tensor_slices((images, labels, ids)), len(labels)

    def get_validation_index(self):
        return list(storage.read_split(self.data_dir, "validation")[2])

    def get_metadata(self, split):
        images, labels, ids = storage.read_split(self.data_dir, split)
        return pd.DataFrame(
            {
                "digit": [DIGITS[i] for i in labels],
                "ink": images.reshape(len(images), -1).mean(axis=1) / 255.0,
            },
            index=pd.Index(ids, name="id"),
        )
