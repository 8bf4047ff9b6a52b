import tensorflow as tf

from abstractions.augmentation import AugmentorBase
from abstractions.preprocessing import PreprocessorBase
from abstractions.utils import ConfigStruct


class EchoPreprocessor(PreprocessorBase):
    """Rescales the frames to [0, 1] and batches. Masks are already float {0, 1} maps, nothing to do."""

    def image_preprocess(self, image):
        return tf.cast(image, tf.float32) / self.normalize_by

    def _wrapper_image_preprocess(self, x, y, w):
        return self.image_preprocess(x), y, w

    def add_image_preprocess(self, generator):
        return generator.map(self._wrapper_image_preprocess)

    def add_label_preprocess(self, generator):
        return generator

    def batchify(self, generator, n_data_points):
        gen = generator.batch(self.batch_size).repeat()
        n_iter = n_data_points // self.batch_size + int((n_data_points % self.batch_size) > 0)
        return gen, n_iter

    def _load_params(self, config: ConfigStruct):
        self.normalize_by = config.preprocessor.normalize_by
        self.batch_size = config.batch_size

    def _set_defaults(self):
        self.normalize_by = 255.0
        self.batch_size = 8


class FlipAugmentor(AugmentorBase):
    """Random flips applied jointly to the frame, its mask and its weight map.

    Training: left-right and up-down flips. Validation: left-right flips only (mirrored probe orientation).
    """

    def add_augmentation(self, generator):
        return generator.map(self._train_flips)

    def add_validation_augmentation(self, generator):
        return generator.map(self._validation_flips)

    def _train_flips(self, image, mask, weight):
        image, mask, weight = self._maybe_flip(image, mask, weight, axis=1)
        image, mask, weight = self._maybe_flip(image, mask, weight, axis=0)
        return image, mask, weight

    def _validation_flips(self, image, mask, weight):
        return self._maybe_flip(image, mask, weight, axis=1)

    def _maybe_flip(self, image, mask, weight, axis):
        do_flip = tf.random.uniform(()) < self.flip_prob
        return tf.cond(do_flip,
                       lambda: (tf.reverse(image, [axis]), tf.reverse(mask, [axis]), tf.reverse(weight, [axis])),
                       lambda: (image, mask, weight))

    def _load_params(self, config):
        self.flip_prob = config.augmentor.flip_prob

    def _set_defaults(self):
        self.flip_prob = 0.5
