"""Scan to [0, 1], clinical features z-scored with the cohort's reference values."""

import tensorflow as tf

from aimed import PreprocessorBase
from aimed.utils import ConfigStruct


class FusionPreprocessor(PreprocessorBase):
    def image_preprocess(self, x):
        scan = tf.reshape(tf.cast(x['scan'], tf.float32), (self.input_h, self.input_w, 1)) / self.normalize_by
        clinical = (tf.cast(x['clinical'], tf.float32) - self.feature_mean) / self.feature_std
        return {'scan': scan, 'clinical': clinical}

    def _wrapper_image_preprocess(self, x, y, w):
        pre_processed = self.image_preprocess(x)
        return pre_processed, y, w

    def label_preprocess(self, label):
        return tf.cast(label, tf.int32)

    def _wrapper_label_preprocess(self, x, y, w):
        return x, self.label_preprocess(y), w

    def add_image_preprocess(self, generator):
        return generator.map(self._wrapper_image_preprocess)

    def add_label_preprocess(self, generator):
        return generator.map(self._wrapper_label_preprocess)

    def batchify(self, generator, n_data_points):
        gen = generator.map(lambda x, y, w: (x, y, tf.cast(w, tf.float32)))
        gen = gen.batch(self.batch_size).repeat()
        n_iter = n_data_points // self.batch_size + int((n_data_points % self.batch_size) > 0)
        return gen, n_iter

    def _load_params(self, config: ConfigStruct):
        self.normalize_by = config.preprocessor.normalize_by
        self.feature_mean = config.preprocessor.feature_mean
        self.feature_std = config.preprocessor.feature_std
        self.input_h = config.input_height
        self.input_w = config.input_width
        self.batch_size = config.batch_size

    def _set_defaults(self):
        self.normalize_by = 255
        self.feature_mean = [57.0, 0.5, 4.0, 8.0, 13.5, 1.5]
        self.feature_std = [11.0, 0.5, 3.0, 1.8, 1.1, 0.5]
        self.input_h = 24
        self.input_w = 24
        self.batch_size = 8
