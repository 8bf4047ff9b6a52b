import tensorflow.keras as tfk

from aimed import ModelBuilderBase


class ModelBuilder(ModelBuilderBase):
    def get_compiled_model(self):
        # An explicit, named Input: Keras 3 deprecates input_shape= on layers, and the name
        # gives exported serving signatures a stable input key.
        model = tfk.models.Sequential([
            tfk.Input(shape=(self.input_h * self.input_w,), name='image'),
            tfk.layers.Dense(self.n_filters, activation=self.activation),
            tfk.layers.Dropout(self.dropout_rate),
            tfk.layers.Dense(10, activation='softmax')
        ])

        # The last layer already applies softmax, so the loss receives probabilities, not logits.
        model.compile(optimizer='adam',
                      loss=tfk.losses.SparseCategoricalCrossentropy(from_logits=False),
                      metrics=[tfk.metrics.SparseCategoricalAccuracy()])

        return model

    def _load_params(self, config):
        m_config = config.model_builder
        self.activation = m_config.activation
        self.n_filters = m_config.n_filters
        self.dropout_rate = m_config.dropout_rate
        self.input_h = config.input_height
        self.input_w = config.input_width

    def _set_defaults(self):
        self.activation = 'relu'
        self.n_filters = 512
        self.dropout_rate = 0.2
        self.input_h = 28
        self.input_w = 28
