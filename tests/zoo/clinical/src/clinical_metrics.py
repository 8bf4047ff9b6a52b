"""Training metrics of the diagnosis model (not registered with Keras)."""

import keras
from keras import ops


class MacroRecall(keras.metrics.Metric):
    """Unweighted mean over the classes seen so far of each class's recall, from logits or scores."""

    def __init__(self, num_classes=3, name='macro_recall', **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = num_classes
        self.hits = self.add_variable(shape=(num_classes,), initializer='zeros', name='hits')
        self.support = self.add_variable(shape=(num_classes,), initializer='zeros', name='support')

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(ops.reshape(y_true, (-1,)), 'int32')
        predicted = ops.cast(ops.argmax(y_pred, axis=-1), 'int32')
        true_onehot = ops.one_hot(y_true, self.num_classes)
        correct = ops.cast(ops.equal(y_true, predicted), 'float32')
        self.hits.assign_add(ops.sum(true_onehot * ops.expand_dims(correct, -1), axis=0))
        self.support.assign_add(ops.sum(true_onehot, axis=0))

    def result(self):
        present = ops.cast(self.support > 0, 'float32')
        recall = self.hits / ops.maximum(self.support, 1.0)
        return ops.sum(recall * present) / ops.maximum(ops.sum(present), 1.0)

    def reset_state(self):
        self.hits.assign(ops.zeros((self.num_classes,)))
        self.support.assign(ops.zeros((self.num_classes,)))

    def get_config(self):
        return {**super().get_config(), 'num_classes': self.num_classes}


def logit_accuracy(y_true, y_pred):
    """1.0 where the arg-max logit is the true class, per sample."""
    y_true = ops.cast(ops.reshape(y_true, (-1,)), 'int32')
    return ops.cast(ops.equal(y_true, ops.cast(ops.argmax(y_pred, axis=-1), 'int32')), 'float32')
