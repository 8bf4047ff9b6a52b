"""Segmentation losses on logits. Plain functions, deliberately not registered with keras."""
from keras import ops


def soft_dice_per_image(y_true, logits, eps=1.0):
    """(B,) soft dice of sigmoid(logits) against a 0/1 mask, both (B, H, W, 1)."""
    prob = ops.sigmoid(logits)
    axes = (1, 2, 3)
    inter = ops.sum(prob * y_true, axis=axes)
    denom = ops.sum(prob, axis=axes) + ops.sum(y_true, axis=axes)
    return (2.0 * inter + eps) / (denom + eps)


def dice_bce(y_true, y_pred):
    """Per-pixel loss (B, H, W): BCE on logits + (1 - soft dice) of the image, spread over its pixels.

    Per-pixel so that per-pixel sample weights apply to it.
    """
    y_true = ops.cast(y_true, y_pred.dtype)
    # numerically stable BCE with logits
    bce = ops.maximum(y_pred, 0.0) - y_pred * y_true + ops.log1p(ops.exp(-ops.abs(y_pred)))
    bce = ops.mean(bce, axis=-1)
    dice = soft_dice_per_image(y_true, y_pred)
    return bce + (1.0 - dice)[:, None, None]
