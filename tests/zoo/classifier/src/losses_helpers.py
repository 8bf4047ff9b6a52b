import tensorflow as tf


def smooth_labels(onehot, eps):
    """(1 - eps) * onehot + eps / K"""
    k = tf.cast(tf.shape(onehot)[-1], onehot.dtype)
    return onehot * (1.0 - eps) + eps / k


def log_softmax(logits):
    """log softmax via the log-sum-exp trick"""
    shifted = logits - tf.reduce_max(logits, axis=-1, keepdims=True)
    return shifted - tf.math.log(tf.reduce_sum(tf.exp(shifted), axis=-1, keepdims=True))
