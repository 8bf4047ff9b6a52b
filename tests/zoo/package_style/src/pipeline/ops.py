"""Element-wise tensor ops used by the preprocessor."""
import tensorflow as tf


def to_unit_range(image):
    return tf.cast(image, tf.float32) / 255.0


def add_channel(image):
    return tf.expand_dims(image, axis=-1)
