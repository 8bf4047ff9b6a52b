"""Building blocks for the glyph classifier."""
import keras
from keras import ops


def to_signed_unit(pixels):
    """[0, 255] -> [-1, 1]."""
    return pixels / 127.5 - 1.0


class ChannelGate(keras.layers.Layer):
    """Squeeze-and-excitation gate: rescales each channel by a learned, input-dependent factor."""

    def __init__(self, reduction=2, gate_bias=1.0, **kwargs):
        super().__init__(**kwargs)
        self.reduction = int(reduction)
        self.gate_bias = float(gate_bias)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        hidden = max(1, channels // self.reduction)
        self.squeeze_kernel = self.add_weight(
            name="squeeze_kernel", shape=(channels, hidden), initializer="glorot_uniform"
        )
        self.excite_kernel = self.add_weight(
            name="excite_kernel", shape=(hidden, channels), initializer="glorot_uniform"
        )
        self.excite_bias = self.add_weight(
            name="excite_bias",
            shape=(channels,),
            initializer=keras.initializers.Constant(self.gate_bias),
        )

    def call(self, inputs):
        summary = ops.mean(inputs, axis=(1, 2))
        hidden = ops.relu(ops.matmul(summary, self.squeeze_kernel))
        gate = ops.sigmoid(ops.matmul(hidden, self.excite_kernel) + self.excite_bias)
        return inputs * gate[:, None, None, :]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"reduction": self.reduction, "gate_bias": self.gate_bias})
        return config
