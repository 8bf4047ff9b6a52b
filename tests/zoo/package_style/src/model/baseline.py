import keras

from aimed import ModelBuilderBase
import common.labels
import common.shapes

from . import heads
from .blocks import feature_extractor


class DigitNet(ModelBuilderBase):
    """Two conv stages and a small dense head, trained with sparse cross-entropy."""

    def _set_defaults(self):
        self.input_shape = (28, 28, 1)
        self.filters = [8, 16]
        self.dense_units = 32
        self.dropout = 0.0
        self.weight_decay = 0.0
        self.learning_rate = 1e-3

    def _load_params(self, config):
        self.input_shape = common.shapes.image_shape(config)
        params = config.model_builder
        self.filters = [int(f) for f in params.get("filters", self.filters)]
        self.dense_units = int(params.get("dense_units", self.dense_units))
        self.dropout = float(params.get("dropout", self.dropout))
        self.weight_decay = float(params.get("weight_decay", self.weight_decay))
        self.learning_rate = float(params.get("learning_rate", self.learning_rate))

    def _network(self):
        inputs = keras.Input(shape=self.input_shape, name="digit")
        features = feature_extractor(inputs, self.filters)
        outputs = heads.softmax_head(
            features,
            common.labels.NUM_CLASSES,
            units=self.dense_units,
            dropout=self.dropout,
            decay=self.weight_decay,
        )
        return keras.Model(inputs, outputs, name="digit_net")

    def get_compiled_model(self):
        model = self._network()
        model.compile(
            optimizer=keras.optimizers.Adam(self.learning_rate),
            loss=keras.losses.SparseCategoricalCrossentropy(),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        )
        return model
