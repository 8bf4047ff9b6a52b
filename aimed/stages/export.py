"""export: the best epoch as a SavedModel with a named serving signature, a .keras file and a model card.

The best epoch is chosen again from ``history.csv`` (NaN-safe, sign-agnostic) and must agree
with the epoch training recorded. Everything is built in a temp folder and renamed into place;
checkpoints are never touched.
"""

from __future__ import annotations

import math
import pathlib
import re
import subprocess
from typing import Any, Dict, Optional

import yaml

from aimed import __version__
from aimed._io import atomic_write_json, atomic_write_text, staged_dir
from aimed.errors import StageFailed
from aimed.model_files import custom_objects_of, rebuilt_model
from aimed.pipeline import BEST_MODEL, DATA_REPORT, HISTORY, TRAIN_SUMMARY
from aimed.run import RunContext
from aimed.tracking import run_tracker

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


def export_savedmodel(model: Any, folder: pathlib.Path) -> Dict[str, Any]:
    """Write a SavedModel whose ``serving_default`` takes one named input and returns ``output_0``."""
    import tensorflow as tf

    spec = model.inputs[0]
    name = _input_name(model)
    model.export(str(folder), format="tf_saved_model", verbose=False,
                 input_signature=[tf.TensorSpec(spec.shape, spec.dtype, name=name)])
    return {"input": {"name": name, "shape": list(spec.shape), "dtype": str(spec.dtype)},
            "output": {"name": "output_0", "shape": list(model.outputs[0].shape)}}


def git_commit(folder: pathlib.Path) -> Optional[str]:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def run(ctx: RunContext) -> Dict[str, Any]:
    """Export the best epoch of the run's training to ``results/<run>/export``."""
    import json

    import keras
    import tensorflow as tf

    history = ctx.artifact(HISTORY)
    summary = json.loads(ctx.artifact(TRAIN_SUMMARY).read_text())
    metric, mode = ctx.config.export.metric, ctx.config.export.mode
    best = best_epoch(history, metric, mode)
    if best["epoch"] != summary["best"]["epoch"] or summary["best"]["metric"] != metric:
        raise StageFailed(
            f"the best epoch by {metric} ({mode}) in {history} is {best['epoch']}, but training "
            f"kept epoch {summary['best']['epoch']} by {summary['best']['metric']}. Rerun `aimed train {ctx.name}`."
        )
    model = rebuilt_model(ctx.model_builder(), ctx.artifact(BEST_MODEL))
    validation = json.loads(ctx.artifact(DATA_REPORT).read_text())
    with staged_dir(ctx.stage_dir("export")) as out:
        signature = export_savedmodel(model, out / "savedmodel")
        model.save(out / "model.keras")
        custom_objects = custom_objects_of(out / "model.keras", ctx.source_dir)
        atomic_write_text(out / "config.yaml", yaml.safe_dump(ctx.config.to_dict(), sort_keys=False))
        atomic_write_json(out / "model_card.json", {
            "run": ctx.name,
            "best_epoch": best["epoch"],
            "export_metric": {"name": metric, "mode": mode, "value": best["value"]},
            "metrics": best["metrics"],
            "epochs_trained": summary["epochs"],
            "data_fingerprint": validation.get("data_fingerprint"),
            "signature": signature,
            # What keras.models.load_model needs to reload model.keras without aimed: these objects of
            # src/ as custom_objects, and safe_mode=False if a Lambda layer holds a Python lambda.
            "reload": {"custom_objects": custom_objects["names"], "safe_mode": not custom_objects["lambda"]},
            "versions": {"aimed": __version__, "tensorflow": tf.__version__, "keras": keras.__version__},
            "git_commit": git_commit(ctx.project_dir),
            "mlflow_run_id": summary.get("mlflow_run_id"),
            **{key: value for key, value in ctx.config.to_dict().items() if key in MODEL_CARD_SECTIONS and value},
        })
        ctx.record_fingerprint("export", out)
    tracker = run_tracker(ctx.config, ctx.project_dir)
    tracker.attach(summary.get("mlflow_run_id"))
    export_dir = ctx.stage_dir("export")
    tracker.log_artifacts([export_dir / "model_card.json", export_dir / "config.yaml"])
    # The SavedModel goes up as a plain artifact folder rather than through mlflow.keras.log_model:
    # log_model would re-serialise the model and infer pip requirements (slow, and needs the
    # network), while the folder is byte for byte the artifact aimed serves and versions.
    tracker.log_artifacts([export_dir / "savedmodel"], "model")
    return best
