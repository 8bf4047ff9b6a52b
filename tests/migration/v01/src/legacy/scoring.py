import numpy as np
import tensorflow.keras as tfk

from abstractions.evaluation import EvaluatorBase


class Evaluator(EvaluatorBase):
    """Per-sample functions: ``y_true`` is a class id, ``y_pred`` the softmax vector of one image."""

    def get_eval_funcs(self):
        return {'sparse categorical ce': self.get_cat_loss(),
                'correct': self.get_correct()}

    def get_cat_loss(self):
        from_logits = self.from_logits

        def scce_loss(y_true, y_pred):
            scce = tfk.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
            return scce(y_true, y_pred).numpy()

        return scce_loss

    @staticmethod
    def get_correct():

        def correct(y_true, y_pred):
            return int(np.argmax(y_pred) == int(np.squeeze(y_true)))

        return correct

    def _load_params(self, config):
        self.from_logits = config.evaluator.from_logits

    def _set_defaults(self):
        self.from_logits = False
