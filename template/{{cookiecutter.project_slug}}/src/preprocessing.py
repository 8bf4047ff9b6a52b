"""The Preprocessor: scales images to [0, 1] and batches them for the model."""

import math

import tensorflow as tf

from aimed import PreprocessorBase


class Preprocessor(PreprocessorBase):
    """Per-image scaling, labels unchanged, fixed-size batches repeated across epochs."""

    def image_preprocess(self, image):
        """One image as float32 of shape (height, width, channels), scaled by ``normalize_by``."""
        image = tf.cast(image, tf.float32) / self.normalize_by
        return tf.reshape(image, (self.input_h, self.input_w, self.channels))

    def label_preprocess(self, label):
        """Labels are class indices already."""
        return label

    def add_image_preprocess(self, generator):
        return generator.map(lambda x, y, w: (self.image_preprocess(x), y, w))

    def add_label_preprocess(self, generator):
        return generator.map(lambda x, y, w: (x, self.label_preprocess(y), w))

    def batchify(self, generator, n_data_points):
        """Batches of ``batch_size``, repeated; ``n_iter`` batches cover the split once."""
        return generator.batch(self.batch_size).repeat(), math.ceil(n_data_points / self.batch_size)

    def _set_defaults(self):
        self.normalize_by = 255.0
        self.input_h = {{ cookiecutter.input_height }}
        self.input_w = {{ cookiecutter.input_width }}
        self.channels = {{ cookiecutter.channels }}
        self.batch_size = 32

    def _load_params(self, config):
        self.normalize_by = config.preprocessor.normalize_by
        self.input_h = config.input_height
        self.input_w = config.input_width
        self.channels = config.data_loader.channels
        self.batch_size = config.batch_size
