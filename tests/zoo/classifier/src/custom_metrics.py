import keras
import tensorflow as tf


def logit_accuracy(y_true, y_pred):
    """1.0 where argmax(logits) hits the one-hot target, else 0.0."""
    hit = tf.equal(tf.argmax(y_true, axis=-1), tf.argmax(y_pred, axis=-1))
    return tf.cast(hit, tf.float32)


class BalancedAccuracy(keras.metrics.Metric):
    """Mean per-class recall, accumulated over a confusion matrix."""

    def __init__(self, num_classes, name="balanced_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = int(num_classes)
        self.confusion = self.add_weight(
            name="confusion", shape=(self.num_classes, self.num_classes), initializer="zeros"
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        true = tf.argmax(y_true, axis=-1)
        pred = tf.argmax(y_pred, axis=-1)
        if sample_weight is not None:
            sample_weight = tf.reshape(tf.cast(sample_weight, tf.float32), [-1])
        cm = tf.math.confusion_matrix(
            true, pred, num_classes=self.num_classes, weights=sample_weight, dtype=tf.float32
        )
        self.confusion.assign_add(cm)

    def result(self):
        support = tf.reduce_sum(self.confusion, axis=1)
        recall = tf.math.divide_no_nan(tf.linalg.diag_part(self.confusion), support)
        present = tf.cast(support > 0, tf.float32)
        return tf.math.divide_no_nan(tf.reduce_sum(recall * present), tf.reduce_sum(present))

    def reset_state(self):
        self.confusion.assign(tf.zeros_like(self.confusion))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}
