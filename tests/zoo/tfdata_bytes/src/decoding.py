import tensorflow as tf


def read_png(path: tf.Tensor, height: int, width: int, channels: int = 3) -> tf.Tensor:
    """Read one PNG file into a (height, width, channels) uint8 tensor."""
    raw = tf.io.read_file(path)
    image = tf.io.decode_png(raw, channels=channels, dtype=tf.uint8)
    image = tf.image.resize_with_crop_or_pad(image, height, width)
    return tf.ensure_shape(image, (height, width, channels))
