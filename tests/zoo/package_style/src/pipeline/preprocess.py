import math

import tensorflow as tf

from aimed import PreprocessorBase
import common.shapes

from .ops import add_channel, to_unit_range

AUTOTUNE = tf.data.AUTOTUNE


class DigitPreprocessor(PreprocessorBase):
    """Scale to [0, 1] (optionally centred), add a channel axis, batch with a short last batch."""

    def _set_defaults(self):
        self.batch_size = 32
        self.center = False
        self.shape = (28, 28, 1)

    def _load_params(self, config):
        self.batch_size = int(config.batch_size)
        self.center = bool(config.preprocessor.get("center", self.center))
        self.shape = common.shapes.image_shape(config)

    def image_preprocess(self, image):
        image = add_channel(to_unit_range(image))
        if self.center:
            image = image - 0.5
        return tf.ensure_shape(image, self.shape)

    def label_preprocess(self, label):
        return tf.cast(label, tf.int32)

    def add_image_preprocess(self, source):
        return source.map(lambda x, y, w: (self.image_preprocess(x), y, w), num_parallel_calls=AUTOTUNE)

    def add_label_preprocess(self, source):
        return source.map(lambda x, y, w: (x, self.label_preprocess(y), w), num_parallel_calls=AUTOTUNE)

    def batchify(self, source, n_data_points):
        n_iter = math.ceil(n_data_points / self.batch_size)
        return source.batch(self.batch_size).prefetch(AUTOTUNE), n_iter
