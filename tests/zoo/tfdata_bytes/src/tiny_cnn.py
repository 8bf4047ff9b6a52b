import keras

from aimed import ModelBuilderBase


class TinyCnn(ModelBuilderBase):
    def _set_defaults(self):
        super()._set_defaults()
        self.n_classes = 3
        self.filters = 8
        self.learning_rate = 3e-3

    def _load_params(self, config):
        super()._load_params(config)
        mb = config.model_builder
        self.n_classes = mb.get("n_classes", self.n_classes)
        self.filters = mb.get("filters", self.filters)
        self.learning_rate = mb.get("learning_rate", self.learning_rate)
        self.shape = (config.input_height, config.input_width, 3)

    def get_compiled_model(self):
        model = keras.Sequential(
            [
                keras.Input(self.shape),
                keras.layers.Conv2D(self.filters, 3, activation="relu"),
                keras.layers.MaxPooling2D(),
                keras.layers.Conv2D(2 * self.filters, 3, activation="relu"),
                keras.layers.GlobalMaxPooling2D(),
                keras.layers.Dense(self.n_classes, activation="softmax"),
            ],
            name="tiny_cnn",
        )
        model.compile(
            optimizer=keras.optimizers.Adam(self.learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model

    def get_callbacks(self):
        return [keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1)]
