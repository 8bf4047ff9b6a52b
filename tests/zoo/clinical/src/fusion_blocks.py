"""Encoder blocks of the scan + clinical fusion network."""

import keras


def scan_encoder(scan, n_filters):
    h = keras.layers.Conv2D(n_filters, 3, padding='same', activation='relu', name='scan_conv1')(scan)
    h = keras.layers.MaxPooling2D(2, name='scan_pool1')(h)
    h = keras.layers.Conv2D(2 * n_filters, 3, padding='same', activation='relu', name='scan_conv2')(h)
    return keras.layers.GlobalAveragePooling2D(name='scan_gap')(h)


def clinical_encoder(clinical, units):
    return keras.layers.Dense(units, activation='relu', name='clinical_dense')(clinical)
