"""The Evaluator: per-image metrics of the evaluation report."""

import keras
import numpy as np

from aimed import EvaluatorBase


class Evaluator(EvaluatorBase):
    """Cross-entropy and correctness of each image's prediction.

    Each function takes one data point (``y_true`` a class index, ``y_pred`` the class scores);
    both also work on whole batches, which aimed detects and uses to evaluate faster.
    """

    def get_eval_funcs(self):
        return {"cross_entropy": self.cross_entropy, "correct": self.correct}

    @staticmethod
    def cross_entropy(y_true, y_pred):
        return keras.ops.convert_to_numpy(keras.losses.sparse_categorical_crossentropy(y_true, y_pred))

    @staticmethod
    def correct(y_true, y_pred):
        return (np.argmax(y_pred, axis=-1) == np.asarray(y_true)).astype(np.float32)
