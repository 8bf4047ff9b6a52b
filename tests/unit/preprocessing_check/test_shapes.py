"""aimed.preprocessing_check.shapes: the model's inputs and outputs, and the weights each output takes."""

from __future__ import annotations

import numpy as np
import pytest

from aimed.preprocessing_check.shapes import model_signature, per_output_weight_problems

OUTPUTS = {"grade": [None, 3], "mask": [None, 8, 8, 1]}


def test_weights_per_output_that_keras_takes_are_no_problem():
    assert per_output_weight_problems("validation batch 0", {"mask": np.ones((4, 8, 8)), "grade": np.ones(4)},
                                      4, OUTPUTS) == []
    assert per_output_weight_problems("b", {"mask": np.ones((4, 8, 8, 1))}, 4, OUTPUTS) == []  # grade unweighted
    assert per_output_weight_problems("b", [np.ones(4), None], 4, OUTPUTS) == []
    assert per_output_weight_problems("b", np.ones(4), 4, OUTPUTS) == []  # one array: Keras applies it to each


def test_a_weight_key_that_names_no_output_is_named_with_the_outputs():
    problems = per_output_weight_problems("train batch 1", {"segmentation": np.ones((4, 8, 8)), "grade": np.ones(4)},
                                          4, OUTPUTS)
    assert problems == ["train batch 1: weights are given for 'segmentation', but the model's outputs are 'grade', "
                        "'mask'; key the weights as the labels are keyed"]


def test_a_per_sample_weight_for_a_segmentation_output_is_refused_with_the_shapes_it_takes():
    problems = per_output_weight_problems("b", {"mask": np.ones(4)}, 4, OUTPUTS)
    assert len(problems) == 1 and "b, output 'mask': weight has shape [4]" in problems[0]
    assert "[4, 8, 8]" in problems[0] and "[4, 8, 8, 1]" in problems[0]
    assert per_output_weight_problems("b", [np.ones(4)], 4, OUTPUTS) == [
        "b: 1 weight arrays for the model's 2 outputs (grade, mask)"]


def test_outputs_are_named_as_labels_address_them():
    keras = pytest.importorskip("keras")
    image = keras.Input((8, 8, 1), name="image")
    features = keras.layers.Flatten()(image)
    model = keras.Model(image, {"mask": keras.layers.Conv2D(1, 1)(image), "grade": keras.layers.Dense(3)(features)})
    signature = model_signature(model)
    assert [o["name"] for o in signature["outputs"]] == ["grade", "mask"]
    assert [o["shape"] for o in signature["outputs"]] == [[None, 3], [None, 8, 8, 1]]
    assert [i["name"] for i in signature["inputs"]] == ["image"]
    single = keras.Model(image, keras.layers.Dense(2, name="scores")(features))
    assert [o["name"] for o in model_signature(single)["outputs"]] == ["scores"]


def test_sample_titles_show_float_labels_to_four_digits_and_class_labels_as_they_are():
    from aimed.preprocessing_check.batches import FirstBatch
    from aimed.preprocessing_check.samples import sample_images

    x = np.zeros((3, 4, 4, 1), np.float32)
    _, titles = sample_images(FirstBatch(x, np.array([2.302000045776367, 0.5, 10.0], np.float32)))
    assert titles == ["y=2.302", "y=0.5", "y=10"]
    _, titles = sample_images(FirstBatch(x, np.array([3, 0, 1])))
    assert titles == ["y=3", "y=0", "y=1"]
    _, titles = sample_images(FirstBatch(x, {"radius": np.array([1.23456, 2, 3], np.float32), "kind": np.array([1, 2, 0])}))
    assert titles[0] == "y=radius:1.235,kind:1"
