"""Model builders for the blob targets."""
import keras

from aimed import ModelBuilderBase

KINDS = 3


def conv_trunk(inputs, filters):
    x = inputs
    for i, n in enumerate(filters):
        x = keras.layers.Conv2D(n, 3, padding="same", activation="relu", name=f"conv{i}")(x)
        x = keras.layers.MaxPooling2D(name=f"pool{i}")(x)
    return keras.layers.Flatten(name="flat")(x)


class _BlobBuilder(ModelBuilderBase):
    def _set_defaults(self):
        super()._set_defaults()
        self.height = self.width = 12
        self.filters = [8, 16]
        self.learning_rate = 1e-3

    def _load_params(self, config):
        super()._load_params(config)
        self.height = int(config.input_height)
        self.width = int(config.input_width)
        params = config.model_builder
        self.filters = list(params.get("filters", self.filters))
        self.learning_rate = float(params.get("learning_rate", self.learning_rate))

    def _inputs(self):
        return keras.Input(shape=(self.height, self.width, 1), name="image")


class RadiusRegressor(_BlobBuilder):
    def get_compiled_model(self):
        inputs = self._inputs()
        features = conv_trunk(inputs, self.filters)
        hidden = keras.layers.Dense(16, activation="relu", name="hidden")(features)
        radius = keras.layers.Dense(1, name="radius")(hidden)
        model = keras.Model(inputs, radius, name="radius_regressor")
        model.compile(
            optimizer=keras.optimizers.Adam(self.learning_rate),
            loss="mse",
            metrics=["mae"],
        )
        return model


class SizeKindNet(_BlobBuilder):
    def _set_defaults(self):
        super()._set_defaults()
        self.kind_loss_weight = 1.0

    def _load_params(self, config):
        super()._load_params(config)
        self.kind_loss_weight = float(
            config.model_builder.get("kind_loss_weight", self.kind_loss_weight)
        )

    def get_compiled_model(self):
        inputs = self._inputs()
        features = conv_trunk(inputs, self.filters)
        hidden = keras.layers.Dense(24, activation="relu", name="hidden")(features)
        outputs = {
            "size": keras.layers.Dense(1, name="size")(hidden),
            "kind": keras.layers.Dense(KINDS, activation="softmax", name="kind")(hidden),
        }
        model = keras.Model(inputs, outputs, name="size_kind_net")
        model.compile(
            optimizer=keras.optimizers.Adam(self.learning_rate),
            loss={"size": "mse", "kind": "sparse_categorical_crossentropy"},
            loss_weights={"size": 1.0, "kind": self.kind_loss_weight},
            metrics={"size": ["mae"], "kind": ["accuracy"]},
        )
        return model
