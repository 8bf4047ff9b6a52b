import numpy as np

from abstractions.preprocessing import PreprocessorBase
from abstractions.utils import ConfigStruct


class Preprocessor(PreprocessorBase):
    """uint8 (h, w) -> float32 (h, w, 1) in [0, 1], batches of exactly ``batch_size``.

    Labels are already class ids, so there is no ``label_preprocess``: ``add_label_preprocess``
    just passes them through.
    """

    def image_preprocess(self, image):
        image = np.reshape(image, (self.input_h, self.input_w, 1)).astype(np.float32)
        return image / self.normalize_by

    def add_image_preprocess(self, generator):
        while True:
            x, y, w = next(generator)
            yield self.image_preprocess(x), y, w

    def add_label_preprocess(self, generator):
        while True:
            x, y, w = next(generator)
            yield x, y, w

    def add_weight_preprocess(self, generator):
        while True:
            x, y, w = next(generator)
            yield x, y, float(w)

    def batchify(self, generator, n_data_points):
        n_iter = n_data_points // self.batch_size + int((n_data_points % self.batch_size) > 0)
        gen = self._batch_gen(generator, self.batch_size)
        return gen, n_iter

    @staticmethod
    def _batch_gen(generator, batch_size):
        while True:
            x_b, y_b, z_b = list(), list(), list()
            for i in range(batch_size):
                x, y, z = next(generator)
                x_b.append(x)
                y_b.append(y)
                z_b.append(z)
            yield np.array(x_b), np.array(y_b), np.array(z_b)

    def _load_params(self, config: ConfigStruct):
        self.normalize_by = config.preprocessor.normalize_by
        self.input_h = config.input_height
        self.input_w = config.input_width
        self.batch_size = config.batch_size

    def _set_defaults(self):
        self.normalize_by = 255
        self.input_h = 16
        self.input_w = 16
        self.batch_size = 8
