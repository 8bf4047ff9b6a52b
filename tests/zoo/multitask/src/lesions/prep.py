import numpy as np

from aimed import PreprocessorBase


def _stack(items):
    """Stacks a list of points; dicts are stacked per key."""
    if isinstance(items[0], dict):
        return {k: _stack([it[k] for it in items]) for k in items[0]}
    return np.stack([np.asarray(it) for it in items])


def _as(tree, dtype):
    if isinstance(tree, dict):
        return {k: _as(v, dtype) for k, v in tree.items()}
    return np.asarray(tree, dtype=dtype)


class LesionPrep(PreprocessorBase):

    def _set_defaults(self):
        self.batch_size = 8
        self.window = (0.0, 255.0)

    def _load_params(self, config):
        self.batch_size = config.batch_size
        self.window = tuple(config.preprocessor.window)

    def image_preprocess(self, image):
        lo, hi = self.window
        image = (np.clip(image, lo, hi) - lo) / (hi - lo)
        return image[..., np.newaxis]

    def label_preprocess(self, label):
        return {"mask": (label["mask"] > 0)[..., np.newaxis], "grade": label["grade"]}

    def add_image_preprocess(self, generator):
        for x, y, w in generator:
            yield self.image_preprocess(x), y, w

    def add_label_preprocess(self, generator):
        for x, y, w in generator:
            yield x, self.label_preprocess(y), w

    def batchify(self, generator, n_data_points):
        n_iter = -(-n_data_points // self.batch_size)
        return self._batches(generator), n_iter

    def _batches(self, generator):
        xs, ys, ws = [], [], []
        for x, y, w in generator:
            xs.append(x)
            ys.append(y)
            ws.append(w)
            if len(xs) == self.batch_size:
                yield self._cast(xs, ys, ws)
                xs, ys, ws = [], [], []
        if xs:
            yield self._cast(xs, ys, ws)

    @staticmethod
    def _cast(xs, ys, ws):
        x = _as(_stack(xs), np.float32)
        y = _stack(ys)
        y = {"mask": _as(y["mask"], np.float32), "grade": _as(y["grade"], np.int32)}
        w = _as(_stack(ws), np.float32)
        return x, y, w
