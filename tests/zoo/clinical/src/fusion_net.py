"""Scan + clinical fusion classifier; outputs logits."""

import keras

from aimed import ModelBuilderBase
from clinical_metrics import MacroRecall, logit_accuracy
from fusion_blocks import clinical_encoder, scan_encoder


class FusionNetBuilder(ModelBuilderBase):
    def get_compiled_model(self):
        scan = keras.Input(shape=(self.input_h, self.input_w, 1), name='scan')
        clinical = keras.Input(shape=(self.n_clinical,), name='clinical')

        z = keras.layers.Concatenate(name='fusion')([scan_encoder(scan, self.n_filters),
                                                     clinical_encoder(clinical, self.dense_units)])
        z = keras.layers.Dropout(self.dropout_rate, name='fusion_dropout')(z)
        logits = keras.layers.Dense(self.n_classes, name='logits')(z)

        model = keras.Model(inputs={'scan': scan, 'clinical': clinical}, outputs=logits, name='fusion_net')
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=self.learning_rate),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=[MacroRecall(self.n_classes), logit_accuracy])
        return model

    def get_callbacks(self):
        return [
            keras.callbacks.EarlyStopping(monitor='val_loss', patience=2, restore_best_weights=True),
            keras.callbacks.ReduceLROnPlateau(monitor='val_loss', patience=1, factor=0.5),
        ]

    def get_class_weight(self):
        # inverse prevalence, normalised so that a balanced cohort would weigh 1 everywhere
        k = len(self.class_prevalence)
        return {i: 1.0 / (k * p) for i, p in enumerate(self.class_prevalence)}

    def _load_params(self, config):
        m_config = config.model_builder
        self.n_filters = m_config.n_filters
        self.dense_units = m_config.dense_units
        self.dropout_rate = m_config.dropout_rate
        self.learning_rate = m_config.learning_rate
        self.n_clinical = m_config.n_clinical
        self.n_classes = m_config.n_classes
        self.class_prevalence = m_config.class_prevalence
        self.input_h = config.input_height
        self.input_w = config.input_width

    def _set_defaults(self):
        self.n_filters = 8
        self.dense_units = 16
        self.dropout_rate = 0.1
        self.learning_rate = 3e-3
        self.n_clinical = 6
        self.n_classes = 3
        self.class_prevalence = [0.60, 0.25, 0.15]
        self.input_h = 24
        self.input_w = 24
