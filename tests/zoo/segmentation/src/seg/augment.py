import tensorflow as tf

from aimed import AugmentorBase


class JointFlip(AugmentorBase):
    """Random flips applied identically to slice, mask and weight map."""

    def _set_defaults(self):
        self.p_left_right = 0.5
        self.p_up_down = 0.0

    def _load_params(self, config):
        p = config.augmentor
        self.p_left_right = float(p.get("p_left_right", self.p_left_right))
        self.p_up_down = float(p.get("p_up_down", self.p_up_down))

    def _flip(self, case, seed):
        u = tf.random.stateless_uniform([2], seed=seed)
        flip_lr = u[0] < self.p_left_right
        flip_ud = u[1] < self.p_up_down

        def apply(t):
            if t.shape.rank is None or t.shape.rank < 2:
                return t
            t = tf.where(flip_lr, tf.reverse(t, axis=[1]), t)
            return tf.where(flip_ud, tf.reverse(t, axis=[0]), t)

        return tuple(apply(t) for t in case)

    def add_augmentation(self, source):
        seeds = tf.data.Dataset.random().batch(2)
        return tf.data.Dataset.zip((source, seeds)).map(
            self._flip, num_parallel_calls=tf.data.AUTOTUNE
        )
