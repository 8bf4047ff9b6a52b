"""export: the best epoch as a SavedModel with a named serving signature, a .keras file and a model card.

The best epoch is chosen again from ``history.csv`` (NaN-safe, sign-agnostic) and must agree
with the epoch training recorded. Everything is built in a temp folder and renamed into place;
checkpoints are never touched. The engine is :mod:`aimed.exporting`.
"""

from __future__ import annotations

import json
from typing import Any, Dict

import yaml

from aimed._io import atomic_write_json, atomic_write_text
from aimed.errors import StageFailed
from aimed.exporting import best_epoch, export_savedmodel, model_card
from aimed.model_files import custom_objects_of, rebuilt_model
from aimed.pipeline import (
    BEST_MODEL,
    DATA_REPORT,
    EXPORTED_CARD,
    EXPORTED_CONFIG,
    EXPORTED_MODEL,
    HISTORY,
    SAVEDMODEL,
    TRAIN_SUMMARY,
    file_name,
)
from aimed.run import RunContext


def run(ctx: RunContext) -> Dict[str, Any]:
    """Export the best epoch of the run's training to ``results/<run>/export``."""
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
    with ctx.publishing("export") as published:
        out = published.folder
        signature = export_savedmodel(model, out / file_name(SAVEDMODEL))
        model.save(out / file_name(EXPORTED_MODEL))
        custom_objects = custom_objects_of(out / file_name(EXPORTED_MODEL), ctx.source_dir)
        atomic_write_text(out / file_name(EXPORTED_CONFIG), yaml.safe_dump(ctx.config.to_dict(), sort_keys=False))
        atomic_write_json(out / file_name(EXPORTED_CARD), model_card(
            ctx, best, summary, validation.get("data_fingerprint"), signature, custom_objects))
        published.mlflow_run_id = summary.get("mlflow_run_id")
    return best
