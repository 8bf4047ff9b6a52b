"""Building blocks of the echo U-Net."""

import tensorflow.keras as tfk


def double_conv(x, n_filters, activation='relu', name=None):
    """Two 3x3 convolutions, the basic block of each U-Net level."""

    prefix = name or f'dconv{n_filters}'
    x = tfk.layers.Conv2D(n_filters, 3, padding='same', kernel_initializer='he_normal',
                          name=f'{prefix}_conv1')(x)
    x = tfk.layers.Activation(activation, name=f'{prefix}_act1')(x)
    x = tfk.layers.Conv2D(n_filters, 3, padding='same', kernel_initializer='he_normal',
                          name=f'{prefix}_conv2')(x)
    x = tfk.layers.Activation(activation, name=f'{prefix}_act2')(x)
    return x


def down_block(x, n_filters, activation='relu', name=None):
    """Returns (skip, pooled)."""

    skip = double_conv(x, n_filters, activation, name=name)
    pooled = tfk.layers.MaxPooling2D(2, name=f'{name}_pool')(skip)
    return skip, pooled


def up_block(x, skip, n_filters, activation='relu', name=None):
    x = tfk.layers.Conv2DTranspose(n_filters, 2, strides=2, padding='same', name=f'{name}_up')(x)
    x = tfk.layers.Concatenate(name=f'{name}_concat')([x, skip])
    return double_conv(x, n_filters, activation, name=name)
