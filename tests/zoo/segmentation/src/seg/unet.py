import keras
from keras import layers

from aimed import ModelBuilderBase

from .layers import double_conv, down, up
from .losses import dice_bce


class UNetBuilder(ModelBuilderBase):
    """Two-level U-Net with a sigmoid lesion-probability map."""

    def _set_defaults(self):
        self.input_shape = (32, 32, 1)
        self.base_filters = 8
        self.learning_rate = 1e-3

    def _load_params(self, config):
        self.input_shape = (int(config.input_height), int(config.input_width), 1)
        p = config.model_builder
        self.base_filters = int(p.get("base_filters", self.base_filters))
        self.learning_rate = float(p.get("learning_rate", self.learning_rate))

    def get_compiled_model(self):
        f = self.base_filters
        inputs = keras.Input(self.input_shape, name="slice")
        x, skip1 = down(inputs, f, "enc1")
        x, skip2 = down(x, 2 * f, "enc2")
        x = double_conv(x, 4 * f, "bottleneck")
        x = up(x, skip2, 2 * f, "dec2")
        x = up(x, skip1, f, "dec1")
        outputs = layers.Conv2D(1, 1, activation="sigmoid", name="lesion_prob")(x)

        model = keras.Model(inputs, outputs, name="unet2")
        model.compile(
            optimizer=keras.optimizers.Adam(self.learning_rate),
            loss=dice_bce,
            metrics=[keras.metrics.BinaryAccuracy(name="pixel_accuracy")],
        )
        return model
