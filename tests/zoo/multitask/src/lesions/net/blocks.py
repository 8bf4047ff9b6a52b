import keras
from keras import layers, ops


class SqueezeExcite(layers.Layer):
    """Channel attention; our own layer, not registered with keras serialization."""

    def __init__(self, ratio=4, **kwargs):
        super().__init__(**kwargs)
        self.ratio = ratio

    def build(self, input_shape):
        channels = int(input_shape[-1])
        hidden = max(1, channels // self.ratio)
        self.w1 = self.add_weight(shape=(channels, hidden), initializer="glorot_uniform", name="w1")
        self.w2 = self.add_weight(shape=(hidden, channels), initializer="glorot_uniform", name="w2")

    def call(self, x):
        s = ops.mean(x, axis=(1, 2))
        s = ops.relu(ops.matmul(s, self.w1))
        s = ops.sigmoid(ops.matmul(s, self.w2))
        return x * s[:, None, None, :]

    def get_config(self):
        return {**super().get_config(), "ratio": self.ratio}


def conv_block(x, filters, name, se=True):
    x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_c1")(x)
    x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_c2")(x)
    if se:
        x = SqueezeExcite(name=f"{name}_se")(x)
    return x


def up_block(x, skip, filters, name):
    x = layers.UpSampling2D(2, name=f"{name}_up")(x)
    x = layers.Concatenate(name=f"{name}_cat")([x, skip])
    return conv_block(x, filters, name, se=False)
