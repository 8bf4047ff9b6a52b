"""The export engine: the best epoch from the history, the SavedModel with a named signature, the model card."""

from __future__ import annotations

import math
import pathlib
import re
import subprocess
from typing import Any, Dict, List, Optional

from aimed.errors import StageFailed

DEFAULT_INPUT_NAME = "inputs"
#: Run-config sections that projects of abstractions carry for the model card; copied into it.
MODEL_CARD_SECTIONS = ("model_details", "model_parameters", "considerations")


def best_epoch(history_path: pathlib.Path, metric: str, mode: str) -> Dict[str, Any]:
    """``{"epoch", "value"}`` of the best finite ``metric`` in a history CSV (first one on ties)."""
    import pandas as pd

    history = pd.read_csv(history_path)
    if metric not in history.columns:
        raise StageFailed(
            f"{history_path} has no column '{metric}' (columns: {', '.join(history.columns)}); "
            f"export.metric must be a metric logged during training."
        )
    finite = history[history[metric].map(lambda v: isinstance(v, (int, float)) and math.isfinite(v))]
    if finite.empty:
        raise StageFailed(f"{history_path}: '{metric}' is never finite, so there is no best epoch to export.")
    index = finite[metric].idxmin() if mode == "min" else finite[metric].idxmax()
    return {"epoch": int(finite.loc[index, "epoch"]), "value": float(finite.loc[index, metric]),
            "metrics": {k: float(v) for k, v in finite.loc[index].items() if k != "epoch"}}


def _input_name(model: Any) -> str:
    name = model.inputs[0].name
    return DEFAULT_INPUT_NAME if re.fullmatch(r"keras_tensor(_\d+)?|input(_layer)?(_\d+)?", name) else name


def _serving_input_signature(model: Any) -> List[Any]:
    """The serving function's arguments: one named spec per model input, in the model's own input structure.

    A lone input with a Keras default name is called ``inputs``; a dict input's specs are named by
    their keys, the names a caller uses; a list input's by the input layers' names.
    """
    import tensorflow as tf

    try:
        structure = model.input
    except AttributeError:  # a Sequential model that was built but never called has only `inputs`
        structure = model.inputs[0] if len(model.inputs) == 1 else list(model.inputs)
    if isinstance(structure, dict):
        return [{key: tf.TensorSpec(t.shape, t.dtype, name=key) for key, t in structure.items()}]
    if isinstance(structure, (list, tuple)):
        return [[tf.TensorSpec(t.shape, t.dtype, name=t.name) for t in structure]]
    return [tf.TensorSpec(structure.shape, structure.dtype, name=_input_name(model))]


def export_savedmodel(model: Any, folder: pathlib.Path) -> Dict[str, Any]:
    """Write a SavedModel with a ``serving_default`` signature; return that signature as the written file has it.

    The signature is read back from the SavedModel, since TensorFlow names the outputs (``output_0``,
    ``output_1``, ... for a tensor or a list, the keys for a dict): ``{"inputs": {name: {"shape",
    "dtype"}}, "outputs": {...}}``, what a server calls and gets back.
    """
    import tensorflow as tf

    model.export(str(folder), format="tf_saved_model", verbose=False, input_signature=_serving_input_signature(model))
    serving = tf.saved_model.load(str(folder)).signatures["serving_default"]

    def described(specs: Dict[str, Any]) -> Dict[str, Any]:
        return {name: {"shape": spec.shape.as_list(), "dtype": spec.dtype.name} for name, spec in sorted(specs.items())}

    return {"inputs": described(serving.structured_input_signature[1]), "outputs": described(serving.structured_outputs)}


def git_commit(folder: pathlib.Path) -> Optional[str]:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def model_card(ctx: Any, best: Dict[str, Any], train_summary: Dict[str, Any], data_fingerprint: Optional[str],
               signature: Dict[str, Any], custom_objects: Dict[str, Any]) -> Dict[str, Any]:
    """The exported model's card: run, best epoch and its metrics, signature, reload info, versions, provenance."""
    import keras
    import tensorflow as tf

    from aimed import __version__

    metric, mode = ctx.config.export.metric, ctx.config.export.mode
    return {
        "run": ctx.name,
        "best_epoch": best["epoch"],
        "export_metric": {"name": metric, "mode": mode, "value": best["value"]},
        "metrics": best["metrics"],
        "epochs_trained": train_summary["epochs"],
        "data_fingerprint": data_fingerprint,
        "signature": signature,
        # What keras.models.load_model needs to reload model.keras without aimed: these objects of
        # src/ as custom_objects, and safe_mode=False if a Lambda layer holds a Python lambda.
        "reload": {"custom_objects": custom_objects["modules"], "safe_mode": not custom_objects["lambda"]},
        "versions": {"aimed": __version__, "tensorflow": tf.__version__, "keras": keras.__version__},
        "git_commit": git_commit(ctx.project_dir),
        "mlflow_run_id": train_summary.get("mlflow_run_id"),
        **{key: value for key, value in ctx.config.to_dict().items() if key in MODEL_CARD_SECTIONS and value},
    }
