import math

import numpy as np

from aimed import PreprocessorBase


class ShapesPreprocessor(PreprocessorBase):
    """uint8 image -> standardised (H, W, 1) float; class index -> one-hot."""

    def _set_defaults(self):
        self.batch_size = 8
        self.mean = 0.0
        self.std = 1.0
        self.n_classes = 3

    def _load_params(self, config):
        self.batch_size = config.batch_size
        self.mean = float(config.preprocessor.get("mean", self.mean))
        self.std = float(config.preprocessor.get("std", self.std))
        self.n_classes = len(config.data_loader.classes)

    def image_preprocess(self, image):
        x = np.asarray(image, dtype=np.float32) / 255.0
        x = (x - self.mean) / self.std
        return x[..., np.newaxis]

    def label_preprocess(self, label):
        onehot = np.zeros(self.n_classes, dtype=np.float32)
        onehot[int(label)] = 1.0
        return onehot

    def add_image_preprocess(self, source):
        for x, y, w in source:
            yield self.image_preprocess(x), y, w

    def add_label_preprocess(self, source):
        for x, y, w in source:
            yield x, self.label_preprocess(y), w

    def batchify(self, source, n_data_points):
        n_iter = math.ceil(n_data_points / self.batch_size)
        return self._batches(source), n_iter

    def _batches(self, source):
        xs, ys, ws = [], [], []
        for x, y, w in source:
            xs.append(x)
            ys.append(y)
            ws.append(w)
            if len(xs) == self.batch_size:
                yield self._stack(xs, ys, ws)
                xs, ys, ws = [], [], []
        if xs:  # short last batch, no padding
            yield self._stack(xs, ys, ws)

    @staticmethod
    def _stack(xs, ys, ws):
        return (
            np.asarray(xs, dtype=np.float32),
            np.asarray(ys, dtype=np.float32),
            np.asarray(ws, dtype=np.float32),
        )
