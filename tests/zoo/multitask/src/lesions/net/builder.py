import keras
from keras import layers

from aimed import ModelBuilderBase

from .. import HEADS, N_GRADES
from ..losses import dice_bce
from .blocks import conv_block, up_block


class TwoHeadNetBuilder(ModelBuilderBase):
    """Small U-Net with a grading head on the bottleneck. Outputs logits: {"mask": (B,H,W,1), "grade": (B,3)}."""

    def _set_defaults(self):
        self.h, self.w = 32, 32
        self.base_filters = 8
        self.lr = 3e-3
        self.grade_loss_weight = 0.5

    def _load_params(self, config):
        mb = config.model_builder
        self.h, self.w = config.input_height, config.input_width
        self.base_filters = mb.base_filters
        self.lr = mb.learning_rate
        self.grade_loss_weight = mb.grade_loss_weight

    def _net(self):
        f = self.base_filters
        inp = keras.Input((self.h, self.w, 1), name="image")
        e1 = conv_block(inp, f, "enc1")
        e2 = conv_block(layers.MaxPooling2D(name="pool1")(e1), 2 * f, "enc2")
        bott = conv_block(layers.MaxPooling2D(name="pool2")(e2), 4 * f, "bott")
        d2 = up_block(bott, e2, 2 * f, "dec2")
        d1 = up_block(d2, e1, f, "dec1")
        mask = layers.Conv2D(1, 1, name="mask")(d1)
        g = layers.GlobalAveragePooling2D(name="gap")(bott)
        g = layers.Dense(16, activation="relu", name="grade_fc")(g)
        grade = layers.Dense(N_GRADES, name="grade")(g)
        return keras.Model(inp, {"mask": mask, "grade": grade}, name="lesion_two_head")

    def get_compiled_model(self):
        model = self._net()
        assert set(model.output_names) == set(HEADS), model.output_names
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=self.lr),
            loss={"mask": dice_bce,
                  "grade": keras.losses.SparseCategoricalCrossentropy(from_logits=True)},
            loss_weights={"mask": 1.0, "grade": self.grade_loss_weight},
            metrics={"grade": [keras.metrics.SparseCategoricalAccuracy(name="acc")]},
        )
        return model
