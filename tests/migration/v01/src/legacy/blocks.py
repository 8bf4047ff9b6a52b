import tensorflow.keras as tfk


def conv_block(x, n_filters, activation='relu', name=None):
    """conv3x3 -> BN -> activation -> maxpool2x2"""

    x = tfk.layers.Conv2D(n_filters, kernel_size=3, padding='same', use_bias=False,
                          name=None if name is None else f'{name}_conv')(x)
    x = tfk.layers.BatchNormalization(name=None if name is None else f'{name}_bn')(x)
    x = tfk.layers.Activation(activation, name=None if name is None else f'{name}_act')(x)
    x = tfk.layers.MaxPooling2D(pool_size=2, name=None if name is None else f'{name}_pool')(x)
    return x
