"""``get_class_weight()`` turned into sample weights: the values, for each label kind and both data styles."""

from __future__ import annotations

import numpy as np
import pytest

from aimed.errors import StageFailed
from aimed.training.class_weights import weight_table, with_class_weights

CLASS_WEIGHT = {0: 0.5, 2: 4.0}  # class 1 left out: weight 1


def _read(batches):
    from aimed.data import take

    return [tuple(np.asarray(v) for v in batch) for batch in take(batches, 10)]


def _sources(x, y, w, style):
    if style == "generator":
        return iter([(x, y, w)] if w is not None else [(x, y)])
    import tensorflow as tf

    elements = (x, y, w) if w is not None else (x, y)
    return tf.data.Dataset.from_tensors(elements)


SPARSE = np.array([0, 1, 2, 2])
#: label kind: (y, model output shape, per-class weight expected per sample or pixel)
CASES = {
    "sparse [B]": (SPARSE, [None, 3], np.array([0.5, 1, 4, 4])),
    "sparse [B, 1]": (SPARSE[:, None], [None, 3], np.array([0.5, 1, 4, 4])),
    "one-hot [B, C]": (np.eye(3)[SPARSE], [None, 3], np.array([0.5, 1, 4, 4])),
    "per-pixel class indices [B, H, W]": (np.array([[[0, 2], [1, 2]]] * 2), [None, 2, 2, 3],
                                          np.array([[[0.5, 4], [1, 4]]] * 2)),
    "per-pixel one-hot [B, H, W, C]": (np.eye(3)[np.array([[[0, 2], [1, 2]]] * 2)], [None, 2, 2, 3],
                                       np.array([[[0.5, 4], [1, 4]]] * 2)),
    "per-pixel sigmoid mask [B, H, W, 1]": (np.array([[[[0.0], [1.0]], [[1.0], [0.0]]]] * 2), [None, 2, 2, 1],
                                            np.array([[[0.5, 1], [1, 0.5]]] * 2)),
}


@pytest.mark.parametrize("style", ["generator", "tf.data"])
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("user_weight", ["none", "per sample", "same shape"])
def test_class_weights_multiply_into_the_users_weights(case, style, user_weight):
    y, output_shape, per_class = CASES[case]
    n = len(y)
    x = np.zeros((n, 2), np.float32)
    if user_weight == "none":
        w, expected = None, per_class
    elif user_weight == "per sample":
        w = np.arange(1, n + 1, dtype=np.float32)
        expected = per_class * w.reshape((n,) + (1,) * (per_class.ndim - 1))
    else:
        w = np.full(per_class.shape, 3.0, np.float32)
        expected = per_class * 3.0
    table = CLASS_WEIGHT if case != "per-pixel sigmoid mask [B, H, W, 1]" else {0: 0.5}
    (batch,) = _read(with_class_weights(_sources(x, y, w, style), table, output_shape))
    np.testing.assert_allclose(batch[2], expected, rtol=1e-6)
    np.testing.assert_array_equal(batch[1], y)


def test_no_class_weights_leave_the_source_alone():
    source = iter([])
    assert with_class_weights(source, None, [None, 3]) is source
    assert with_class_weights(source, {}, [None, 3]) is source


def test_class_weight_table_defaults_to_one_and_grows_to_the_largest_index():
    np.testing.assert_array_equal(weight_table({"1": 2, 4: 0.5}, 3), [1, 2, 1, 1, 0.5])
    with pytest.raises(StageFailed, match="negative class indices"):
        weight_table({-1: 2.0}, 3)
    with pytest.raises(StageFailed, match="must map class indices"):
        weight_table({"cat": 2.0}, 3)


def test_multi_output_labels_are_refused_with_the_reason():
    batches = iter([(np.zeros((2, 1)), {"a": np.zeros(2), "b": np.zeros(2)}, np.ones(2))])
    with pytest.raises(StageFailed, match="multi-output model"):
        _read(with_class_weights(batches, {0: 2.0}, [None, 3]))


# ----------------------------------------------------------------------------- in training

WEIGHTED_BUILDER = '''


class ClassWeightedModelBuilder(ModelBuilder):
    """Test only: class weights from the model_builder section."""

    def get_class_weight(self):
        return {int(k): float(v) for k, v in self.config.model_builder.class_weight.items()}
'''


def _train_with(train_project, run: str, class_weight, name: str):
    import pandas as pd
    from conftest import check_aimed

    overrides = {"epochs": 1, "model_builder": {"class_weight": class_weight}}
    if class_weight is not None:
        overrides["model_builder_class"] = "models.ClassWeightedModelBuilder"
    project = train_project(overrides, name=name)
    with (project / "src" / "models.py").open("a") as f:
        f.write(WEIGHTED_BUILDER)
    check_aimed(project, "train", run)
    return pd.read_csv(project / "results" / run / "train" / "history.csv")


@pytest.mark.slow
@pytest.mark.parametrize("run", ["mnist-gen", "mnist-tf"])
def test_training_takes_class_weights_for_generators_and_tf_data(train_project, run):
    """Keras 3 refuses class_weight for these sources; aimed weights the samples and trains."""
    plain = _train_with(train_project, run, None, "plain")
    ones = _train_with(train_project, run, {c: 1.0 for c in range(10)}, "ones")
    heavy = _train_with(train_project, run, {c: 3.0 if c % 2 else 0.25 for c in range(10)}, "heavy")
    # Weights of 1 change nothing, bit for bit; others change both the training and validation loss.
    assert ones.equals(plain)
    assert heavy["loss"][0] != plain["loss"][0] and heavy["val_loss"][0] != plain["val_loss"][0]
