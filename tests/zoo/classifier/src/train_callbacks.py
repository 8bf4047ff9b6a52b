import keras


class LearningRateLog(keras.callbacks.Callback):
    """Keeps the learning rate used in every epoch (ReduceLROnPlateau changes it)."""

    def __init__(self):
        super().__init__()
        self.rates = []

    def on_epoch_begin(self, epoch, logs=None):
        lr = self.model.optimizer.learning_rate
        self.rates.append(float(keras.ops.convert_to_numpy(lr)))
