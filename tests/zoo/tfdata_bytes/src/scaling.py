import math

import tensorflow as tf

from aimed import PreprocessorBase


class ScaleAndBatch(PreprocessorBase):
    def _set_defaults(self):
        super()._set_defaults()
        self.scale = 1.0 / 255.0
        self.batch_size = 8

    def _load_params(self, config):
        super()._load_params(config)
        self.scale = float(config.preprocessor.get("scale", self.scale))
        self.batch_size = config.batch_size

    def image_preprocess(self, image):
        return tf.cast(image, tf.float32) * self.scale

    def label_preprocess(self, label):
        return tf.cast(label, tf.int32)

    def add_image_preprocess(self, source):
        return source.map(lambda x, y, w: (self.image_preprocess(x), y, w))

    def add_label_preprocess(self, source):
        return source.map(lambda x, y, w: (x, self.label_preprocess(y), w))

    def batchify(self, source, n_data_points):
        n_iter = math.ceil(n_data_points / self.batch_size)
        return source.batch(self.batch_size), n_iter
