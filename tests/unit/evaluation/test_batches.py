"""aimed.evaluation.batches: preprocessed batches regrouped into evaluation batches of one size."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from aimed.data import row_of, rows_in, structure_map
from aimed.evaluation.batches import eval_batches


def _source(n_rows: int, batch: int, third: bool = True):
    """Batches of ``(x, y, ids)``: x row i is ``[i, i]``, y is ``10 * i``, ids ``"id-i"``."""
    for start in range(0, n_rows, batch):
        idx = np.arange(start, min(start + batch, n_rows))
        x = np.stack([idx, idx], axis=1).astype(np.float32)
        y = (10 * idx).astype(np.int64)
        ids = np.array([f"id-{i}" for i in idx])
        yield (x, y, ids) if third else (x, y)


def test_structure_helpers():
    value = {"a": np.arange(6).reshape(3, 2), "b": [np.arange(3), np.arange(3) * 2]}
    assert rows_in(value) == 3
    assert rows_in((np.zeros((4, 1)), np.zeros(4))) == 4
    doubled = structure_map(lambda leaf: leaf * 2, value)
    assert isinstance(doubled["b"], list)
    np.testing.assert_array_equal(doubled["b"][1], [0, 4, 8])
    summed = structure_map(lambda u, v: u + v, value, value)
    np.testing.assert_array_equal(summed["a"], value["a"] * 2)
    row = row_of(value, 1)
    np.testing.assert_array_equal(row["a"], [2, 3])
    assert [int(v) for v in row["b"]] == [1, 2]


def _collect(batches):
    batches = list(batches)
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    third = None if batches[0][2] is None else np.concatenate([b[2] for b in batches])
    return [len(b[0]) for b in batches], x, y, third


def test_generator_batches_are_regrouped_to_the_first_n_rows_in_order():
    sizes, x, y, ids = _collect(eval_batches(_source(9, 3), n_iter=3, n=7, batch_size=4))
    assert sizes == [4, 3]
    np.testing.assert_array_equal(x[:, 0], np.arange(7))
    np.testing.assert_array_equal(y, 10 * np.arange(7))
    assert ids.tolist() == [f"id-{i}" for i in range(7)]


def test_generator_batches_smaller_than_the_source_batches():
    batches = list(eval_batches(_source(10, 5, third=False), n_iter=2, n=10, batch_size=3))
    assert [len(b[0]) for b in batches] == [3, 3, 3, 1]
    assert all(b[2] is None for b in batches)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), 10 * np.arange(10))


def test_an_infinite_generator_is_read_only_as_far_as_needed():
    read = []

    def endless():
        for i in itertools.count():
            read.append(i)
            yield np.full((4, 1), i, dtype=np.float32), np.full(4, i)

    sizes, _, y, _ = _collect(eval_batches(endless(), n_iter=1000, n=6, batch_size=8))
    assert sizes == [6]
    assert y.tolist() == [0, 0, 0, 0, 1, 1]
    assert read == [0, 1]


def test_n_iter_limits_the_batches_read():
    sizes, _, y, _ = _collect(eval_batches(_source(20, 4), n_iter=2, n=20, batch_size=5))
    assert sizes == [5, 3]
    np.testing.assert_array_equal(y, 10 * np.arange(8))


def test_no_rows_for_n_zero():
    assert list(eval_batches(_source(6, 3), n_iter=2, n=0, batch_size=4)) == []


def _dict_source():
    for start in (0, 2, 4):
        idx = np.arange(start, start + 2)
        yield {"image": idx[:, None] * np.ones((2, 3)), "meta": idx.astype(np.float32)}, idx, np.ones(2)


def _check_dict_batches(batches):
    assert [rows_in(b[0]) for b in batches] == [3, 2]
    assert batches[0][0]["image"].shape == (3, 3)
    np.testing.assert_array_equal(batches[0][0]["image"][:, 0], [0, 1, 2])
    np.testing.assert_array_equal(batches[1][0]["meta"], [3, 4])
    np.testing.assert_array_equal(batches[1][1], [3, 4])
    np.testing.assert_array_equal(batches[1][2], [1, 1])


def test_dict_inputs_from_a_generator_are_regrouped_leaf_by_leaf():
    _check_dict_batches(list(eval_batches(_dict_source(), n_iter=3, n=5, batch_size=3)))


def test_dict_inputs_from_tf_data_are_regrouped_leaf_by_leaf_in_numpy():
    tf = pytest.importorskip("tensorflow")
    batches = list(_dict_source())
    dataset = tf.data.Dataset.from_generator(lambda: iter(batches), output_signature=(
        {"image": tf.TensorSpec((None, 3), tf.float64), "meta": tf.TensorSpec((None,), tf.float32)},
        tf.TensorSpec((None,), tf.int64), tf.TensorSpec((None,), tf.float64)))
    _check_dict_batches(list(eval_batches(dataset, n_iter=3, n=5, batch_size=3)))


def test_tf_dataset_is_regrouped_by_tf_data():
    tf = pytest.importorskip("tensorflow")
    n_rows = 9
    idx = np.arange(n_rows)
    dataset = tf.data.Dataset.from_tensor_slices(
        (np.stack([idx, idx], 1).astype(np.float32), idx * 10, np.array([f"id-{i}" for i in idx]))).batch(3)
    sizes, x, y, ids = _collect(eval_batches(dataset, n_iter=3, n=7, batch_size=4))
    assert sizes == [4, 3]
    assert isinstance(x, np.ndarray)
    np.testing.assert_array_equal(y, 10 * np.arange(7))
    assert [i.decode() for i in ids] == [f"id-{i}" for i in range(7)]


def test_tf_dataset_without_third_element_and_n_iter_limit():
    tf = pytest.importorskip("tensorflow")
    idx = np.arange(12)
    dataset = tf.data.Dataset.from_tensor_slices((idx[:, None].astype(np.float32), idx)).batch(4).repeat()
    batches = list(eval_batches(dataset, n_iter=2, n=8, batch_size=3))
    assert [len(b[0]) for b in batches] == [3, 3, 2]
    assert all(b[2] is None for b in batches)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), np.arange(8))


def _per_output_weight_source():
    """A two-output model's batches: weights per output, per-pixel for the mask and a scalar for the grade."""
    for start in (0, 3, 6):
        idx = np.arange(start, start + 3)
        mask = idx[:, None, None, None] * np.ones((3, 2, 2, 1))
        yield idx[:, None].astype(np.float32), {"mask": mask, "grade": idx}, {"mask": 1 + mask[..., 0], "grade": 1.0}


def test_weights_per_output_are_regrouped_leaf_by_leaf_and_a_scalar_weight_is_repeated():
    batches = list(eval_batches(_per_output_weight_source(), n_iter=3, n=8, batch_size=5))
    assert [rows_in(b[0]) for b in batches] == [5, 3]
    weights = [b[2] for b in batches]
    assert weights[0]["mask"].shape == (5, 2, 2)
    np.testing.assert_array_equal(np.concatenate([w["mask"][:, 0, 0] for w in weights]), 1 + np.arange(8))
    np.testing.assert_array_equal(np.concatenate([w["grade"] for w in weights]), np.ones(8))
    np.testing.assert_array_equal(np.concatenate([b[1]["grade"] for b in batches]), np.arange(8))


def test_weights_per_output_reach_the_compiled_loss_of_a_two_output_model():
    """The evaluation step weights each output's loss with its own weights, as Keras' evaluate does."""
    pytest.importorskip("tensorflow")
    import keras

    from aimed.evaluation.step import eval_step, predicted_batches

    inputs = keras.Input((1,))
    model = keras.Model(inputs, {"mask": keras.layers.Reshape((2, 2, 1))(keras.layers.Dense(4)(inputs)),
                                 "grade": keras.layers.Dense(1)(inputs)})
    model.compile(loss={"mask": "mse", "grade": "mse"})
    batches = list(_per_output_weight_source())
    predicted = list(predicted_batches(eval_step(model), eval_batches(iter(batches), 3, 9, 9), weighted=True))
    x = np.concatenate([b[0] for b in batches])
    y = {key: np.concatenate([b[1][key] for b in batches]) for key in ("mask", "grade")}
    weights = {"mask": np.concatenate([b[2]["mask"] for b in batches]), "grade": np.ones(9)}
    expected = model.evaluate(x, y, sample_weight=weights, batch_size=9, verbose=0, return_dict=True)["loss"]
    assert predicted[0].loss == pytest.approx(expected, rel=1e-5)


def test_weights_per_output_from_tf_data_are_regrouped_leaf_by_leaf():
    tf = pytest.importorskip("tensorflow")
    batches = [(x, y, {"mask": w["mask"], "grade": np.ones(3)}) for x, y, w in _per_output_weight_source()]
    dataset = tf.data.Dataset.from_generator(lambda: iter(batches), output_signature=(
        tf.TensorSpec((None, 1), tf.float32),
        {"mask": tf.TensorSpec((None, 2, 2, 1), tf.float64), "grade": tf.TensorSpec((None,), tf.int64)},
        {"mask": tf.TensorSpec((None, 2, 2), tf.float64), "grade": tf.TensorSpec((None,), tf.float64)}))
    regrouped = list(eval_batches(dataset, n_iter=3, n=8, batch_size=5))
    assert [rows_in(b[0]) for b in regrouped] == [5, 3]
    np.testing.assert_array_equal(np.concatenate([b[2]["mask"][:, 1, 1] for b in regrouped]), 1 + np.arange(8))
    np.testing.assert_array_equal(np.concatenate([b[2]["grade"] for b in regrouped]), np.ones(8))
