import tensorflow as tf

from losses_helpers import log_softmax, smooth_labels

LABEL_SMOOTHING = 0.1


def smoothed_ce(y_true, y_pred):
    """Cross-entropy on logits against label-smoothed one-hot targets. Returns one value per sample."""
    y_pred = tf.convert_to_tensor(y_pred)
    targets = smooth_labels(tf.cast(y_true, y_pred.dtype), LABEL_SMOOTHING)
    return -tf.reduce_sum(targets * log_softmax(y_pred), axis=-1)
