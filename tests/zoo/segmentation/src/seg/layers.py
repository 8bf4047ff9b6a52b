"""U-Net building blocks."""
from keras import layers


def double_conv(x, filters, name):
    for i in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
    return x


def down(x, filters, name):
    skip = double_conv(x, filters, name)
    return layers.MaxPooling2D(2, name=f"{name}_pool")(skip), skip


def up(x, skip, filters, name):
    x = layers.Conv2DTranspose(filters, 2, strides=2, padding="same", name=f"{name}_upconv")(x)
    x = layers.Concatenate(name=f"{name}_concat")([x, skip])
    return double_conv(x, filters, name)
