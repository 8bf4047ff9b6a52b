"""Weight penalties and initialisers shared by the model's layers."""
import keras


def weight_decay(rate):
    return keras.regularizers.L2(rate) if rate else None


def head_initializer(seed=None):
    return keras.initializers.GlorotUniform(seed=seed)
