"""Training-time augmentation: horizontal scan flips and small multiplicative noise on the labs.

Stateless random ops only, seeded from (a per-pipeline draw of numpy's global generator,
the element's position), so every epoch gets its own draws and a resumed epoch the same ones.
"""

import numpy as np
import tensorflow as tf

from aimed import AugmentorBase


class FlipAndJitter(AugmentorBase):

    def add_augmentation(self, generator):
        base_seed = int(np.random.randint(0, 2 ** 31 - 1))
        return generator.enumerate().map(lambda i, point: self._augment(base_seed, i, point))

    def add_validation_augmentation(self, generator):
        # validation stays as acquired
        return generator

    def _augment(self, base_seed, index, point):
        x, y, w = point
        seed = tf.stack([tf.constant(base_seed, tf.int64), tf.cast(index, tf.int64)])
        flip_seed, noise_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))

        scan = x['scan']
        if self.flip:
            scan = tf.image.stateless_random_flip_left_right(scan, seed=flip_seed)

        clinical = tf.cast(x['clinical'], tf.float32)
        noise = tf.random.stateless_normal(tf.shape(clinical), seed=noise_seed, stddev=self.noise_std)
        clinical = clinical * (1.0 + noise * tf.constant(self.noisy_features, tf.float32))

        return {'scan': scan, 'clinical': clinical}, y, w

    def _load_params(self, config):
        self.flip = config.augmentor.flip
        self.noise_std = config.augmentor.noise_std
        self.noisy_features = config.augmentor.noisy_features

    def _set_defaults(self):
        self.flip = True
        self.noise_std = 0.02
        # age, sex, crp, wbc, hb, lactate: sex is never jittered
        self.noisy_features = [1.0, 0.0, 1.0, 1.0, 1.0, 1.0]
