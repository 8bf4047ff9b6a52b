"""Preprocessing for the blob models: numpy for generators, tf ops for tf.data."""
import math

import numpy as np
import tensorflow as tf

from aimed import PreprocessorBase


class GeneratorPreprocessor(PreprocessorBase):
    def _set_defaults(self):
        super()._set_defaults()
        self.batch_size = 8
        self.center = 0.5

    def _load_params(self, config):
        super()._load_params(config)
        self.batch_size = int(config.batch_size)
        self.center = float(config.preprocessor.get("center", self.center))

    def image_preprocess(self, image):
        return (np.asarray(image, np.float32) - self.center)[..., np.newaxis]

    def label_preprocess(self, label):
        return np.asarray(label, np.float32).reshape(1)

    def add_image_preprocess(self, source):
        for image, label, weight in source:
            yield self.image_preprocess(image), label, weight

    def add_label_preprocess(self, source):
        for image, label, weight in source:
            yield image, self.label_preprocess(label), weight

    def batchify(self, source, n_data_points):
        n_iter = math.ceil(n_data_points / self.batch_size)
        return self._chunks(source), n_iter

    def _chunks(self, source):
        pending = []
        for point in source:
            pending.append(point)
            if len(pending) == self.batch_size:
                yield self._stack(pending)
                pending = []
        if pending:
            yield self._stack(pending)

    @staticmethod
    def _stack(points):
        images, labels, weights = zip(*points)
        return (
            np.stack(images).astype(np.float32),
            np.stack(labels).astype(np.float32),
            np.asarray(weights, dtype=np.float32),
        )


class DatasetPreprocessor(PreprocessorBase):
    def _set_defaults(self):
        super()._set_defaults()
        self.batch_size = 8
        self.center = 0.5

    def _load_params(self, config):
        super()._load_params(config)
        self.batch_size = int(config.batch_size)
        self.center = float(config.preprocessor.get("center", self.center))

    def image_preprocess(self, image):
        return tf.expand_dims(tf.cast(image, tf.float32) - self.center, -1)

    def label_preprocess(self, label):
        return {
            "size": tf.cast(label["size"], tf.float32),
            "kind": tf.cast(label["kind"], tf.int32),
        }

    def add_image_preprocess(self, source):
        return source.map(lambda x, y, w: (self.image_preprocess(x), y, w))

    def add_label_preprocess(self, source):
        return source.map(lambda x, y, w: (x, self.label_preprocess(y), w))

    def batchify(self, source, n_data_points):
        batched = source.batch(self.batch_size).prefetch(tf.data.AUTOTUNE)
        return batched, math.ceil(n_data_points / self.batch_size)
