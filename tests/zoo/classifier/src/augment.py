import numpy as np

from aimed import AugmentorBase


class FlipNoiseAugmentor(AugmentorBase):
    """Random horizontal/vertical flips plus additive gaussian noise, on numpy images."""

    def _set_defaults(self):
        self.p_hflip = 0.5
        self.p_vflip = 0.0
        self.noise_std = 0.0

    def _load_params(self, config):
        cfg = config.augmentor
        self.p_hflip = float(cfg.get("p_hflip", self.p_hflip))
        self.p_vflip = float(cfg.get("p_vflip", self.p_vflip))
        self.noise_std = float(cfg.get("noise_std", self.noise_std))

    def augment_one(self, img, rng):
        out = img.astype(np.float32)
        if rng.random() < self.p_hflip:
            out = out[:, ::-1]
        if rng.random() < self.p_vflip:
            out = out[::-1, :]
        if self.noise_std > 0:
            scale = 255.0 if np.issubdtype(img.dtype, np.integer) else 1.0
            out = out + rng.normal(0.0, self.noise_std * scale, size=out.shape)
        if np.issubdtype(img.dtype, np.integer):
            out = np.clip(np.rint(out), 0, 255)
        return np.ascontiguousarray(out).astype(img.dtype)

    def add_augmentation(self, source):
        rng = np.random.default_rng(np.random.randint(0, 2**31 - 1))
        for img, label, weight in source:
            yield self.augment_one(np.asarray(img), rng), label, weight
