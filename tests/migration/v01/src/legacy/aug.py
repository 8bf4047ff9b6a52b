import numpy as np

from abstractions.augmentation import AugmentorBase


class FlipAugmentor(AugmentorBase):
    """Random horizontal / vertical flips on the raw (h, w) uint8 image.

    Bars and squares stay the same class under flips, so labels are untouched.
    """

    def add_augmentation(self, generator):
        while True:
            x, y, w = next(generator)
            yield self._flip(x), y, w

    def add_validation_augmentation(self, generator):
        # we never augment validation data (do_validation_augmentation: false in every run)
        return generator

    def _flip(self, image):
        if self.horizontal_flip and np.random.random() < self.flip_proba:
            image = np.fliplr(image)
        if self.vertical_flip and np.random.random() < self.flip_proba:
            image = np.flipud(image)
        return np.ascontiguousarray(image)

    def _load_params(self, config):
        aug_config = config.augmentor
        self.flip_proba = aug_config.flip_proba
        self.horizontal_flip = aug_config.horizontal_flip
        self.vertical_flip = aug_config.vertical_flip

    def _set_defaults(self):
        self.flip_proba = 0.5
        self.horizontal_flip = True
        self.vertical_flip = True
