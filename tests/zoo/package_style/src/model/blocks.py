"""Convolutional feature blocks."""
from keras import layers


def conv_stage(x, filters, name):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    x = layers.ReLU(name=f"{name}_relu")(x)
    return layers.MaxPooling2D(2, name=f"{name}_pool")(x)


def feature_extractor(inputs, filters):
    x = inputs
    for i, f in enumerate(filters):
        x = conv_stage(x, f, name=f"stage{i + 1}")
    return x
