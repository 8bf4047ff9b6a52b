"""The trained model, rebuilt from the user's code: no custom object needs registering.

A ``.keras`` file names a plain-function loss, a metric function or a custom layer by its name
only, and ``keras.models.load_model`` cannot find one that was never registered with
``keras.saving`` ("Could not locate function"); a ``Lambda`` holding a Python lambda needs
``safe_mode=False`` besides. aimed does not reload its own files by name: it builds the model
with the run's ``ModelBuilder`` (the code the fingerprint covers) and loads the saved weights
into it. The files stay plain ``.keras`` files; :func:`custom_objects_of` names what another
program must pass as ``custom_objects`` to reload one.
"""

from __future__ import annotations

import json
import pathlib
import sys
import zipfile
from typing import Any, Dict, List

from aimed.components import ModelBuilderBase
from aimed.errors import StageFailed


def rebuilt_model(builder: ModelBuilderBase, weights: pathlib.Path) -> Any:
    """``builder.get_compiled_model()`` with the weights of the ``.keras`` file ``weights`` loaded into it."""
    model = builder.get_compiled_model()
    if getattr(model, "optimizer", None) is not None:
        # The file holds the optimizer's state too; an unbuilt optimizer has fewer variables.
        model.optimizer.build(model.trainable_variables)
    try:
        model.load_weights(weights)
    except (ValueError, KeyError) as exc:
        raise StageFailed(
            f"the weights in {weights} do not fit the model that {type(builder).__name__}.get_compiled_model() "
            f"builds now: {str(exc).splitlines()[0]}. The model code changed since training without its "
            f"fingerprint noticing; rerun `aimed train`."
        ) from None
    return model


def user_objects(src: pathlib.Path) -> Dict[str, Any]:
    """``{name: object}`` of the classes and functions defined in the imported modules under ``src``."""
    found: Dict[str, Any] = {}
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if not file or not pathlib.Path(file).resolve().is_relative_to(src):
            continue
        for name, value in vars(module).items():
            if getattr(value, "__module__", None) == module.__name__ and (isinstance(value, type) or callable(value)):
                found.setdefault(name, value)
    return found


def _strings(value: Any) -> List[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def custom_objects_of(keras_file: pathlib.Path, src: pathlib.Path) -> Dict[str, Any]:
    """Which of the user's objects a ``.keras`` file refers to: ``{"modules": {name: module}, "lambda": bool}``.

    Each name goes to ``custom_objects`` when reloading the file elsewhere, taken from its module
    (dotted, importable with ``src`` on ``sys.path``: ``discs.model.losses``); ``lambda`` means a
    ``Lambda`` layer holds Python bytecode, which Keras loads only with ``safe_mode=False``.
    """
    with zipfile.ZipFile(keras_file) as archive:
        config = json.loads(archive.read("config.json"))
    strings = set(_strings(config))
    modules = {name: value.__module__ for name, value in sorted(user_objects(src).items()) if name in strings}
    return {"modules": modules, "lambda": '"class_name": "__lambda__"' in json.dumps(config)}
