from keras import layers

from ..regularizers import head_initializer, weight_decay


def softmax_head(features, num_classes, units, dropout, decay):
    x = layers.Flatten(name="head_flatten")(features)
    x = layers.Dense(
        units,
        activation="relu",
        kernel_regularizer=weight_decay(decay),
        kernel_initializer=head_initializer(),
        name="head_hidden",
    )(x)
    if dropout:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    return layers.Dense(
        num_classes,
        activation="softmax",
        kernel_regularizer=weight_decay(decay),
        kernel_initializer=head_initializer(),
        name="digit_probs",
    )(x)
