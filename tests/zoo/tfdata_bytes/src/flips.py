import tensorflow as tf

from aimed import AugmentorBase


class RandomFlips(AugmentorBase):
    def _set_defaults(self):
        super()._set_defaults()
        self.vertical = False
        self.seed = None

    def _load_params(self, config):
        super()._load_params(config)
        self.vertical = bool(config.augmentor.get("vertical", self.vertical))
        self.seed = config.get("seed")

    def _flip(self, image, label, weight):
        image = tf.image.random_flip_left_right(image, seed=self.seed)
        if self.vertical:
            image = tf.image.random_flip_up_down(image, seed=self.seed)
        return image, label, weight

    def add_augmentation(self, source):
        return source.map(self._flip, num_parallel_calls=tf.data.AUTOTUNE)

    def add_validation_augmentation(self, source):
        return source
