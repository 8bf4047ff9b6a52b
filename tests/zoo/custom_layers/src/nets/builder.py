import keras

from aimed import ModelBuilderBase

from .custom import ChannelGate, to_signed_unit


class GlyphNetBuilder(ModelBuilderBase):
    """Two conv blocks, each followed by a ChannelGate, then a softmax head."""

    def _set_defaults(self):
        super()._set_defaults()
        self.n_classes = 4
        self.widths = (8, 16)
        self.reduction = 2
        self.dropout = 0.1
        self.learning_rate = 2e-3
        self.class_weights = None

    def _load_params(self, config):
        super()._load_params(config)
        self.input_shape = (config.input_height, config.input_width, 1)
        cfg = config.model_builder
        self.n_classes = cfg.get("n_classes", self.n_classes)
        self.widths = tuple(cfg.get("widths", self.widths))
        self.reduction = cfg.get("reduction", self.reduction)
        self.dropout = cfg.get("dropout", self.dropout)
        self.learning_rate = cfg.get("learning_rate", self.learning_rate)
        self.class_weights = cfg.get("class_weights", self.class_weights)

    def build(self):
        pixels = keras.Input(self.input_shape, name="pixels")
        x = keras.layers.Lambda(to_signed_unit, name="rescale")(pixels)
        for i, width in enumerate(self.widths):
            x = keras.layers.Conv2D(width, 3, padding="same", name=f"block{i}_conv")(x)
            x = keras.layers.BatchNormalization(name=f"block{i}_bn")(x)
            x = keras.layers.Activation("relu", name=f"block{i}_relu")(x)
            x = ChannelGate(reduction=self.reduction, name=f"block{i}_gate")(x)
            x = keras.layers.MaxPooling2D(name=f"block{i}_pool")(x)
        x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
        x = keras.layers.Dropout(self.dropout, name="dropout")(x)
        probs = keras.layers.Dense(self.n_classes, activation="softmax", name="probs")(x)
        return keras.Model(pixels, probs, name="glyphnet")

    def get_compiled_model(self):
        model = self.build()
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=self.learning_rate),
            loss=keras.losses.SparseCategoricalCrossentropy(),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc")],
        )
        return model

    def get_callbacks(self):
        return [keras.callbacks.TerminateOnNaN()]

    def get_class_weight(self):
        if not self.class_weights:
            return None
        return {i: float(w) for i, w in enumerate(self.class_weights)}
