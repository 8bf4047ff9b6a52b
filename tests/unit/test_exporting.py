"""aimed.exporting: the SavedModel's serving signature, for one or several inputs and outputs."""

from __future__ import annotations

import numpy as np
import pytest

from aimed.exporting import export_savedmodel


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


def _served(folder, **inputs):
    import tensorflow as tf

    serve = tf.saved_model.load(str(folder)).signatures["serving_default"]
    return {name: value.numpy() for name, value in serve(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


def test_a_dict_input_two_head_model_serves_every_input_and_output_by_name(keras, tmp_path):
    image, clinical = keras.Input((4, 4, 1), name="scan"), keras.Input((3,), name="clinical")
    features = keras.layers.Concatenate()([keras.layers.Flatten()(image), clinical])
    model = keras.Model({"image": image, "clinical": clinical},
                        {"mask": keras.layers.Conv2D(1, 1)(image), "grade": keras.layers.Dense(3)(features)})
    signature = export_savedmodel(model, tmp_path / "savedmodel")
    assert signature == {
        "inputs": {"clinical": {"shape": [None, 3], "dtype": "float32"},
                   "image": {"shape": [None, 4, 4, 1], "dtype": "float32"}},
        "outputs": {"grade": {"shape": [None, 3], "dtype": "float32"},
                    "mask": {"shape": [None, 4, 4, 1], "dtype": "float32"}},
    }
    x = {"image": np.random.default_rng(0).normal(size=(2, 4, 4, 1)).astype(np.float32),
         "clinical": np.ones((2, 3), np.float32)}
    served = _served(tmp_path / "savedmodel", **x)
    expected = model.predict(x, verbose=0)
    for name in ("mask", "grade"):
        np.testing.assert_allclose(served[name], expected[name], rtol=1e-5, atol=1e-6)


def test_one_input_keeps_its_name_and_a_list_of_outputs_is_numbered(keras, tmp_path):
    image = keras.Input((5,), name="image")
    model = keras.Model(image, [keras.layers.Dense(2)(image), keras.layers.Dense(1)(image)])
    signature = export_savedmodel(model, tmp_path / "savedmodel")
    assert list(signature["inputs"]) == ["image"]
    assert signature["outputs"] == {"output_0": {"shape": [None, 2], "dtype": "float32"},
                                    "output_1": {"shape": [None, 1], "dtype": "float32"}}


def test_an_input_keras_named_is_called_inputs(keras, tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    signature = export_savedmodel(model, tmp_path / "savedmodel")
    assert signature["inputs"] == {"inputs": {"shape": [None, 3], "dtype": "float32"}}
    assert _served(tmp_path / "savedmodel", inputs=np.zeros((4, 3), np.float32))["output_0"].shape == (4, 2)


def test_a_list_input_model_takes_one_argument_per_input_layer(keras, tmp_path):
    a, b = keras.Input((2,), name="left"), keras.Input((3,), name="right")
    model = keras.Model([a, b], keras.layers.Dense(1)(keras.layers.Concatenate()([a, b])))
    signature = export_savedmodel(model, tmp_path / "savedmodel")
    assert list(signature["inputs"]) == ["left", "right"]
    served = _served(tmp_path / "savedmodel", left=np.ones((2, 2), np.float32), right=np.ones((2, 3), np.float32))
    assert served["output_0"].shape == (2, 1)
