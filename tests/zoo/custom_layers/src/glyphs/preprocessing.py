from __future__ import annotations

import itertools
import math

import numpy as np

from aimed import PreprocessorBase


class StrokePreprocessor(PreprocessorBase):
    """Adds a channel axis and packs points into full-size batches.

    Pixel scaling lives in the model (a Lambda layer), so images stay in [0, 255] here.
    """

    def _set_defaults(self) -> None:
        super()._set_defaults()
        self.batch_size = 16

    def _load_params(self, config) -> None:
        super()._load_params(config)
        self.batch_size = config.batch_size

    def image_preprocess(self, image):
        return np.asarray(image, dtype=np.float32)[:, :, None]

    def label_preprocess(self, label):
        return np.int32(label)

    def add_image_preprocess(self, source):
        return ((self.image_preprocess(x), y, w) for x, y, w in source)

    def add_label_preprocess(self, source):
        return ((x, self.label_preprocess(y), w) for x, y, w in source)

    def batchify(self, source, n_data_points):
        return self._batches(iter(source)), math.ceil(n_data_points / self.batch_size)

    def _batches(self, points):
        # Always full-size batches: a stream that runs dry mid-batch is topped up
        # with the first points it produced.
        head = []
        while True:
            chunk = list(itertools.islice(points, self.batch_size))
            if not chunk:
                return
            head.extend(chunk[: self.batch_size - len(head)])
            if len(chunk) < self.batch_size:
                chunk += list(itertools.islice(itertools.cycle(head), self.batch_size - len(chunk)))
            xs, ys, ws = zip(*chunk)
            yield np.stack(xs), np.asarray(ys, np.int32), np.asarray(ws, np.float32)
