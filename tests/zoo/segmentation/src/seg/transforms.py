import math

import tensorflow as tf

from aimed import PreprocessorBase

AUTOTUNE = tf.data.AUTOTUNE


class CTWindowing(PreprocessorBase):
    """Intensity windowing to [0, 1]; masks and weight maps as float32."""

    def _set_defaults(self):
        self.window_center = 40.0
        self.window_width = 400.0
        self.height = self.width = 32
        self.batch_size = 8

    def _load_params(self, config):
        p = config.preprocessor
        self.window_center = float(p.get("window_center", self.window_center))
        self.window_width = float(p.get("window_width", self.window_width))
        self.height, self.width = int(config.input_height), int(config.input_width)
        self.batch_size = int(config.batch_size)

    def image_preprocess(self, image):
        low = self.window_center - self.window_width / 2.0
        x = (tf.cast(image, tf.float32) - low) / self.window_width
        return tf.clip_by_value(x, 0.0, 1.0)[..., tf.newaxis]

    def label_preprocess(self, mask):
        return tf.cast(mask > 0, tf.float32)[..., tf.newaxis]

    def weight_preprocess(self, weight):
        return tf.broadcast_to(tf.cast(weight, tf.float32), (self.height, self.width))

    def add_image_preprocess(self, source):
        return source.map(lambda x, y, w: (self.image_preprocess(x), y, w), num_parallel_calls=AUTOTUNE)

    def add_label_preprocess(self, source):
        return source.map(lambda x, y, w: (x, self.label_preprocess(y), w), num_parallel_calls=AUTOTUNE)

    def add_weight_preprocess(self, source):
        return source.map(lambda x, y, w: (x, y, self.weight_preprocess(w)), num_parallel_calls=AUTOTUNE)

    def batchify(self, source, n_data_points):
        # endless stream of full batches; the consumer takes ceil(n / batch_size) of them
        batches = source.repeat().batch(self.batch_size, drop_remainder=True)
        return batches.prefetch(AUTOTUNE), math.ceil(n_data_points / self.batch_size)
