"""Dice + BCE on sigmoid probabilities, kept per pixel so pixel weight maps apply."""
import keras
import tensorflow as tf

SMOOTH = 1.0


def soft_dice_loss(y_true, y_pred):
    """1 - soft Dice per sample, shape (B,)."""
    axes = [1, 2, 3]
    inter = tf.reduce_sum(y_true * y_pred, axis=axes)
    total = tf.reduce_sum(y_true, axis=axes) + tf.reduce_sum(y_pred, axis=axes)
    return 1.0 - (2.0 * inter + SMOOTH) / (total + SMOOTH)


def dice_bce(y_true, y_pred):
    """Per-pixel BCE plus the sample's soft Dice loss spread over its pixels, shape (B, H, W)."""
    y_true = tf.cast(y_true, y_pred.dtype)
    bce = keras.losses.binary_crossentropy(y_true, y_pred)
    dice = soft_dice_loss(y_true, y_pred)
    return bce + dice[:, tf.newaxis, tf.newaxis]
