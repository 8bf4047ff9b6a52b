import tensorflow as tf
import tensorflow.keras as tfk

from abstractions import ModelBuilderBase

from .blocks import conv_block


class CNNBuilder(ModelBuilderBase):
    """Two conv blocks + GAP + softmax over ``n_classes``; sparse (class-id) labels."""

    def get_compiled_model(self):
        inputs = tfk.Input(shape=(self.input_h, self.input_w, 1), name='image')
        x = inputs
        for i in range(self.n_blocks):
            x = conv_block(x, self.n_filters * (2 ** i), activation=self.activation, name=f'block{i + 1}')
        x = tfk.layers.GlobalAveragePooling2D()(x)
        x = tfk.layers.Dropout(self.dropout_rate)(x)
        outputs = tfk.layers.Dense(self.n_classes, activation='softmax', name='probs')(x)
        model = tfk.Model(inputs, outputs, name=self.name)

        model.compile(optimizer=tfk.optimizers.Adam(learning_rate=self.learning_rate),
                      loss=tfk.losses.SparseCategoricalCrossentropy(from_logits=False),
                      metrics=[tfk.metrics.SparseCategoricalAccuracy()])

        return model

    def _load_params(self, config):
        m_config = config.model_builder
        self.name = m_config.name
        self.activation = m_config.activation
        self.n_filters = m_config.n_filters
        self.n_blocks = m_config.n_blocks
        self.dropout_rate = m_config.dropout_rate
        self.learning_rate = m_config.learning_rate
        self.n_classes = m_config.n_classes
        self.input_h = config.input_height
        self.input_w = config.input_width

    def _set_defaults(self):
        self.name = 'bars-cnn'
        self.activation = 'relu'
        self.n_filters = 8
        self.n_blocks = 2
        self.dropout_rate = 0.2
        self.learning_rate = 0.001
        self.n_classes = 3
        self.input_h = 16
        self.input_w = 16
