"""Shapes of batches against the compiled model's inputs and outputs, and the weights Keras takes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional

import numpy as np

if TYPE_CHECKING:
    import keras


def shape_of(value: Any) -> List[Any]:
    """The shape of an array-like, as a list."""
    return list(np.shape(value))


def model_signature(model: "keras.Model") -> Dict[str, Any]:
    """Name, shape and dtype of each of the model's inputs and outputs, for the report.

    Outputs are named as the labels and losses address them: a dict output's keys, else
    ``model.output_names`` (the last layers' names), not by their tensors' generated names.
    """
    structure = getattr(model, "output", None)
    if isinstance(structure, dict):
        key_of = {id(tensor): key for key, tensor in structure.items()}
        output_names = [key_of.get(id(t), t.name) for t in model.outputs]
    else:
        output_names = list(getattr(model, "output_names", None) or [])
    if len(output_names) != len(model.outputs):
        output_names = [t.name for t in model.outputs]

    def described(name: str, t: Any) -> Dict[str, Any]:
        return {"name": name, "shape": list(t.shape), "dtype": str(t.dtype)}

    return {"inputs": [described(t.name, t) for t in model.inputs],
            "outputs": [described(name, t) for name, t in zip(output_names, model.outputs)]}


def fits(actual: List[Any], expected: List[Any]) -> bool:
    """Whether a shape matches an expected one, ``None`` matching any size."""
    return len(actual) == len(expected) and all(e is None or a == e for a, e in zip(actual, expected))


def structured(value: Any) -> bool:
    """A dict, list or tuple of arrays: the data of a multi-input or multi-output model."""
    return isinstance(value, (dict, list, tuple))


def weight_shapes(size: int, output_shape: List[Any]) -> List[List[Any]]:
    """The sample-weight shapes Keras 3 takes for a batch of ``size`` rows of one output.

    Per sample, ``[B]``; for an output with more axes than ``[B, classes]`` (a segmentation map),
    one weight per position of the loss, ``[B, H, W]`` or ``[B, H, W, 1]``, and only those: Keras 3
    does not broadcast a per-sample weight over a per-pixel loss.
    """
    if len(output_shape) > 2:
        per_position = [size] + list(output_shape[1:-1])
        return [per_position, per_position + [1]]
    return [[size]]


def weight_problem(where: str, w: Any, size: int, output_shape: List[Any]) -> Optional[str]:
    """What is wrong with a batch's weights for the model output, or ``None``."""
    fitting = weight_shapes(size, output_shape)
    if any(fits(shape_of(w), shape) for shape in fitting):
        if not np.all(np.isfinite(np.asarray(w, dtype=np.float64))):
            return f"{where}: weight has NaN or inf values"
        return None
    return (f"{where}: weight has shape {shape_of(w)}; for the model output {output_shape} a weight must have "
            f"shape {' or '.join(map(str, fitting))}")


def per_output_weight_problems(where: str, w: Any, size: int, outputs: Dict[str, List[Any]]) -> List[str]:
    """What is wrong with a several-output model's weights given per output (a dict or a list).

    ``outputs``: each output's name (as :func:`model_signature` names it) and shape. A dict may
    leave an output out (that output is unweighted); a key that names no output is a problem,
    since the weights would never be applied where the user meant them.
    """
    if isinstance(w, dict):
        unknown = sorted(set(w) - set(outputs))
        problems = [f"{where}: weights are given for {', '.join(map(repr, unknown))}, but the model's outputs are "
                    f"{', '.join(map(repr, outputs))}; key the weights as the labels are keyed"] if unknown else []
        pairs = [(name, w[name]) for name in outputs if w.get(name) is not None]
    elif isinstance(w, (list, tuple)):
        if len(w) != len(outputs):
            return [f"{where}: {len(w)} weight arrays for the model's {len(outputs)} outputs ({', '.join(outputs)})"]
        problems, pairs = [], [(name, value) for name, value in zip(outputs, w) if value is not None]
    else:
        return []
    for name, value in pairs:
        problem = weight_problem(f"{where}, output '{name}'", value, size, outputs[name])
        if problem:
            problems.append(problem)
    return problems
