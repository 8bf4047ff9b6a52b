"""The DataLoader: reads ``<data_dir>/<split>/labels.csv`` and the images it names.

``labels.csv`` has the columns ``image name`` and ``label`` (an integer class), as in the
aimed tutorial's layout. Training and validation yield ``(image, label, weight)``; the test
split yields ``(image, label, image name)``, so the evaluation report can name each image.
"""

import pathlib

import pandas as pd
import tensorflow as tf

from aimed import DataLoaderBase


class DataLoader(DataLoaderBase):
    """tf.data loader for PNG or JPEG images in the tutorial's folder layout."""

    def create_training_generator(self):
        """Shuffled ``(image, label, weight)`` of the training split, and its size."""
        labels = self._labels("train")
        dataset = self._images_and_labels(labels, tf.ones(len(labels)))
        if self.shuffle:
            dataset = dataset.shuffle(len(labels))
        return dataset, len(labels)

    def create_validation_generator(self):
        """``(image, label, weight)`` of the validation split, in file order, and its size."""
        labels = self._labels("validation")
        return self._images_and_labels(labels, tf.ones(len(labels))), len(labels)

    def create_test_generator(self):
        """``(image, label, image name)`` of the test split, in file order, and its size."""
        labels = self._labels("test")
        return self._images_and_labels(labels, labels["image name"].tolist()), len(labels)

    def get_validation_index(self):
        """Image names of the validation split, in the order its generator yields them."""
        return self._labels("validation")["image name"].tolist()

    def _labels(self, split: str) -> pd.DataFrame:
        folder = pathlib.Path(self.data_dir) / split
        labels = pd.read_csv(folder / "labels.csv")
        labels["path"] = [str(folder / name) for name in labels["image name"]]
        return labels

    def _images_and_labels(self, labels: pd.DataFrame, third) -> tf.data.Dataset:
        paths = tf.data.Dataset.from_tensor_slices(labels["path"].tolist())
        images = paths.map(self._read_image)
        return tf.data.Dataset.zip((images, tf.data.Dataset.from_tensor_slices(labels["label"].tolist()),
                                    tf.data.Dataset.from_tensor_slices(third)))

    def _read_image(self, path):
        return tf.io.decode_image(tf.io.read_file(path), channels=self.channels, expand_animations=False)

    def _set_defaults(self):
        self.shuffle = True
        self.channels = {{ cookiecutter.channels }}

    def _load_params(self, config):
        self.shuffle = config.data_loader.shuffle
        self.channels = config.data_loader.channels
