"""``get_class_weight()`` as per-sample (or per-pixel) weights, multiplied into the user's own.

Keras 3 refuses ``class_weight`` for Python generators and for any source that yields sample
weights, which every aimed source does. So aimed looks each label's class up in the user's
``{class index: weight}`` and multiplies the result into the batch's weight, for tf.data and
generators alike, for training and validation:

- sparse labels, ``[B]`` or ``[B, 1]``: one weight per sample;
- one-hot (or soft) labels, ``[B, C]``: the class of the row's largest value;
- per-pixel labels, ``[B, H, W]``, ``[B, H, W, 1]`` (class indices, or 0/1 masks of a sigmoid
  output) or ``[B, H, W, C]`` (one-hot): one weight per pixel, ``[B, H, W]``.

A weight of lower rank than the class weights (``[B]`` beside ``[B, H, W]``) is broadcast over
the trailing axes, as Keras does. Classes missing from the mapping keep weight 1, as in Keras.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import numpy as np

from aimed.data import is_tf_dataset
from aimed.errors import StageFailed


def weight_table(class_weight: Mapping[Any, float], n_classes: int) -> np.ndarray:
    """The weight of each class index, 1.0 for classes the mapping leaves out."""
    try:
        indices = {int(k): float(v) for k, v in class_weight.items()}
    except (TypeError, ValueError) as exc:
        raise StageFailed(
            f"get_class_weight() returned {dict(class_weight)!r}; it must map class indices (int) to weights "
            f"(float): {exc}."
        ) from None
    negative = [k for k in indices if k < 0]
    if negative:
        raise StageFailed(f"get_class_weight() has negative class indices {negative}; classes count from 0.")
    table = np.ones(max([n_classes, *(k + 1 for k in indices)]), dtype=np.float32)
    for index, value in indices.items():
        table[index] = value
    return table


def _class_axis_is_one_hot(label_rank: int, output_rank: int, n_classes: int) -> bool:
    return label_rank == output_rank and n_classes > 1


def _classes_numpy(y: np.ndarray, output_rank: int, n_classes: int) -> np.ndarray:
    y = np.asarray(y)
    if _class_axis_is_one_hot(y.ndim, output_rank, n_classes) and y.shape[-1] == n_classes:
        return np.argmax(y, axis=-1)
    if y.ndim == output_rank and y.shape[-1] == 1:
        y = y[..., 0]
    return np.rint(y).astype(np.int64)


def _combine_numpy(weight: Optional[np.ndarray], per_class: np.ndarray) -> np.ndarray:
    if weight is None:
        return per_class
    weight = np.asarray(weight, dtype=np.float32)
    if weight.ndim < per_class.ndim:
        weight = weight.reshape(weight.shape + (1,) * (per_class.ndim - weight.ndim))
    elif per_class.ndim < weight.ndim:
        per_class = per_class.reshape(per_class.shape + (1,) * (weight.ndim - per_class.ndim))
    return weight * per_class


def _combine_tf(weight: Any, per_class: Any) -> Any:
    import tensorflow as tf

    weight = tf.cast(weight, tf.float32)
    rank_gap = len(per_class.shape) - len(weight.shape)
    for _ in range(max(rank_gap, 0)):
        weight = weight[..., tf.newaxis]
    for _ in range(max(-rank_gap, 0)):
        per_class = per_class[..., tf.newaxis]
    return weight * per_class


def with_class_weights(batches: Any, class_weight: Optional[Mapping[Any, float]], output_shape: list) -> Any:
    """``batches`` of ``(x, y[, weight])`` with the class weight of each label multiplied into the weight.

    ``output_shape`` is the model's single output shape (``[None, C]``, ``[None, H, W, C]``).
    Returns ``batches`` unchanged when there are no class weights.
    """
    if not class_weight:
        return batches
    output_rank, n_classes = len(output_shape), int(output_shape[-1] or 1)
    table = weight_table(class_weight, max(n_classes, 2))  # one sigmoid unit scores two classes
    if is_tf_dataset(batches):
        import tensorflow as tf

        lookup = tf.constant(table)

        def add(x, y, weight=None):
            _check_labels(y)
            if _class_axis_is_one_hot(len(y.shape), output_rank, n_classes) and y.shape[-1] == n_classes:
                classes = tf.argmax(y, axis=-1)
            else:
                classes = y[..., 0] if len(y.shape) == output_rank and y.shape[-1] == 1 else y
                classes = tf.cast(tf.round(tf.cast(classes, tf.float32)), tf.int64)
            per_class = tf.gather(lookup, tf.clip_by_value(classes, 0, len(table) - 1))
            return x, y, per_class if weight is None else _combine_tf(weight, per_class)

        return batches.map(add)

    def weighted():
        for batch in batches:
            x, y, *rest = batch
            _check_labels(y)
            classes = np.clip(_classes_numpy(y, output_rank, n_classes), 0, len(table) - 1)
            yield x, y, _combine_numpy(rest[0] if rest else None, table[classes])

    return weighted()


def _check_labels(y: Any) -> None:
    if isinstance(y, (dict, list, tuple)):
        raise StageFailed(
            "get_class_weight() is set, but the labels are a dict or list (a multi-output model): aimed cannot "
            "tell which output the class weights are for. Return None from get_class_weight() and put the class "
            "weights into the per-sample weights of your DataLoader or preprocessing instead."
        )
