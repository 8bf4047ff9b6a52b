import tensorflow.keras as tfk

from abstractions.model_building import ModelBuilderBase

from .layers import double_conv, down_block, up_block


class UNetBuilder(ModelBuilderBase):
    """Small 2-level U-Net for LV-cavity segmentation, sigmoid output of shape (B, H, W, 1)."""

    def get_compiled_model(self):
        inputs = tfk.Input(shape=(self.input_h, self.input_w, self.n_channels), name='image')

        skip1, x = down_block(inputs, self.n_filters, self.activation, name='enc1')
        x = double_conv(x, self.n_filters * 2, self.activation, name='bottleneck')
        if self.dropout_rate > 0:
            x = tfk.layers.Dropout(self.dropout_rate, name='bottleneck_drop')(x)
        x = up_block(x, skip1, self.n_filters, self.activation, name='dec1')

        outputs = tfk.layers.Conv2D(1, 1, activation='sigmoid', name='mask')(x)

        model = tfk.Model(inputs, outputs, name=self.name)
        model.compile(optimizer=tfk.optimizers.Adam(learning_rate=self.learning_rate),
                      loss=tfk.losses.BinaryCrossentropy(),
                      metrics=[tfk.metrics.BinaryAccuracy(name='acc')])
        return model

    def _load_params(self, config):
        m_config = config.model_builder
        self.name = m_config.name
        self.n_filters = m_config.n_filters
        self.activation = m_config.activation
        self.dropout_rate = m_config.dropout_rate
        self.learning_rate = m_config.learning_rate
        self.input_h = config.input_height
        self.input_w = config.input_width
        self.n_channels = config.n_channels

    def _set_defaults(self):
        self.name = 'echo-unet'
        self.n_filters = 8
        self.activation = 'relu'
        self.dropout_rate = 0.1
        self.learning_rate = 1e-3
        self.input_h = 32
        self.input_w = 32
        self.n_channels = 1
