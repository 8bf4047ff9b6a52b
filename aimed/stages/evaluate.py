"""evaluate: one streaming pass over a split, writing a per-datapoint report, a summary and plots.

The engine is :mod:`aimed.evaluation` (the pass and the report columns:
:mod:`aimed.evaluation.split`); this stage loads the exported model and the run's components,
checks the quality gate and publishes the results.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Dict

from aimed._io import atomic_write_json
from aimed.errors import StageFailed
from aimed.evaluation.plots import write_plots
from aimed.evaluation.split import EvalSettings, evaluate_split
from aimed.evaluation.summary import check_thresholds, flat_metrics
from aimed.model_files import rebuilt_model
from aimed.pipeline import EXPORTED_CARD, EXPORTED_MODEL, report_file_name
from aimed.run import RunContext

log = logging.getLogger(__name__)


def run(ctx: RunContext, split: str, gate: bool = True) -> Dict[str, Any]:
    """Evaluate the run's exported model on ``split`` into ``results/<run>/evaluate/<split>``.

    On the validation split the ``evaluation.thresholds`` gate is checked: the outputs are
    written either way (with ``blessed``), then a failed gate raises unless the gate is off
    (``gate``, or :meth:`RunContext.gate_enforced`). An evaluation that fails its gate is written
    without ``fingerprint.json``, the record of a completed stage, so it is never taken as up to date.
    """
    config = ctx.config
    evaluation = config.evaluation
    settings = EvalSettings(evaluation.report_format, tuple(evaluation.slice_by), evaluation.worst_k,
                            evaluation.worst_by, evaluation.worst_direction)
    enforce_gate = ctx.gate_enforced(gate)
    model = rebuilt_model(ctx.model_builder(), ctx.artifact(EXPORTED_MODEL))
    card = json.loads(ctx.artifact(EXPORTED_CARD).read_text())
    with ctx.publishing("evaluate", split) as published:
        out = published.folder
        result = evaluate_split(model, ctx.data_loader(), ctx.preprocessor(), ctx.evaluator(), split,
                                out / report_file_name(settings.report_format), settings)
        summary = result.summary
        if split == "validation":
            summary["gate"] = check_thresholds(summary, evaluation.thresholds.to_dict())
            summary["blessed"] = summary["gate"]["blessed"]
        # The export's card stays as exported (an upstream artifact); the evaluated card sits here.
        atomic_write_json(out / "model_card.json", {**card, "evaluation": {
            "split": split, "model_metrics": summary["model_metrics"],
            "accuracy": summary.get("classification", {}).get("accuracy"),
            "gate": summary.get("gate"), "blessed": summary.get("blessed")}})
        atomic_write_json(out / "confusion_matrix.json", {
            "confusion_matrix": None if result.confusion is None else result.confusion.tolist()})
        atomic_write_json(out / "summary.json", summary)
        write_plots(out, result, split, config.input_height, config.input_width)
        # A failed gate that is enforced leaves the stage incomplete (see RunContext.record_fingerprint).
        published.complete = summary.get("blessed", True) or not enforce_gate
        # Into the training's MLflow run, named by the export's card (export is evaluate's upstream).
        published.mlflow_run_id = card.get("mlflow_run_id")
        published.metrics = flat_metrics(summary, split)
    log.info("%s: %s", split, json.dumps(summary["model_metrics"]))
    gate_result = summary.get("gate")
    if gate_result and not gate_result["blessed"]:
        message = (f"run '{ctx.name}' failed its quality gate on the validation split: "
                   + "; ".join(gate_result["failures"])
                   + f". The evaluation is written with blessed: false to {ctx.stage_dir('evaluate') / split}. "
                   f"Improve the model or change evaluation.thresholds in {config.source}.")
        if enforce_gate:
            raise StageFailed(message)
        log.warning("%s (not failing: the gate is off)", message)
    return summary
