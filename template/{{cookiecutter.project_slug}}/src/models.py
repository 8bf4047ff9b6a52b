"""The ModelBuilder: a small convolutional classifier, compiled and ready to fit."""

import keras

from aimed import ModelBuilderBase


class ModelBuilder(ModelBuilderBase):
    """Conv → pool → dense → softmax over ``n_classes``; a working default to replace with your own."""

    def get_compiled_model(self):
        inputs = keras.Input(shape=(self.input_h, self.input_w, self.channels), name="image")
        x = keras.layers.Conv2D(self.filters, 3, activation="relu")(inputs)
        x = keras.layers.MaxPooling2D()(x)
        x = keras.layers.Flatten()(x)
        x = keras.layers.Dense(self.dense_units, activation="relu")(x)
        x = keras.layers.Dropout(self.dropout_rate)(x)
        outputs = keras.layers.Dense(self.n_classes, activation="softmax", name="scores")(x)
        model = keras.Model(inputs, outputs)
        model.compile(optimizer=keras.optimizers.Adam(self.learning_rate),
                      loss=keras.losses.SparseCategoricalCrossentropy(),
                      metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
        return model

    def _set_defaults(self):
        self.filters = 16
        self.dense_units = 64
        self.dropout_rate = 0.2
        self.learning_rate = 1e-3
        self.input_h = {{ cookiecutter.input_height }}
        self.input_w = {{ cookiecutter.input_width }}
        self.channels = {{ cookiecutter.channels }}
        self.n_classes = {{ cookiecutter.n_classes }}

    def _load_params(self, config):
        section = config.model_builder
        self.filters = section.filters
        self.dense_units = section.dense_units
        self.dropout_rate = section.dropout_rate
        self.learning_rate = section.learning_rate
        self.n_classes = section.n_classes
        self.input_h = config.input_height
        self.input_w = config.input_width
        self.channels = config.data_loader.channels
