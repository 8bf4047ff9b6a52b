import keras
from keras import layers

from aimed import ModelBuilderBase
from custom_metrics import BalancedAccuracy, logit_accuracy
from losses import smoothed_ce
from train_callbacks import LearningRateLog


class SmallCNN(ModelBuilderBase):

    def _set_defaults(self):
        self.h, self.w = 28, 28
        self.filters = [8, 16]
        self.lr = 1e-3
        self.class_counts = None
        self.plateau_patience = 2

    def _load_params(self, config):
        self.h, self.w = config.input_height, config.input_width
        mb = config.model_builder
        self.filters = list(mb.get("filters", self.filters))
        self.lr = float(mb.get("lr", self.lr))
        self.class_counts = list(mb.class_counts)
        self.plateau_patience = int(mb.get("plateau_patience", self.plateau_patience))

    @property
    def n_classes(self):
        return len(self.class_counts)

    def get_compiled_model(self):
        inp = keras.Input((self.h, self.w, 1), name="image")
        x = inp
        for f in self.filters:
            x = layers.Conv2D(f, 3, padding="same", activation="relu")(x)
            x = layers.MaxPooling2D()(x)
        x = layers.GlobalAveragePooling2D()(x)
        logits = layers.Dense(self.n_classes, name="logits")(x)  # no softmax

        model = keras.Model(inp, logits, name="small_cnn")
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=self.lr),
            loss=smoothed_ce,
            metrics=[logit_accuracy, BalancedAccuracy(self.n_classes)],
        )
        return model

    def get_callbacks(self):
        return [
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=0.5, patience=self.plateau_patience, min_lr=1e-5
            ),
            LearningRateLog(),
        ]

    def get_class_weight(self):
        # "balanced" weighting: n_samples / (n_classes * count_c)
        total = sum(self.class_counts)
        return {c: total / (self.n_classes * n) for c, n in enumerate(self.class_counts)}
