"""sync-mlflow: upload what a run logged while MLflow was unreachable.

Per-epoch metrics come from the resume state's history (steps already in MLflow are skipped),
artifacts from the run's results folder. The MLflow run is created now if training never
reached the server.
"""

from __future__ import annotations

from typing import Any, Dict

from aimed import __version__
from aimed.errors import StageFailed
from aimed.pipeline import EVAL_SPLITS
from aimed.run import RunContext
from aimed.tracking import flatten, open_state_run, run_tracker
from aimed.training.lock import train_lock
from aimed.training.state import TrainState


def run(ctx: RunContext) -> Dict[str, Any]:
    """Bring the run's MLflow run up to date with its history and artifacts."""
    # The training lock: a training running now would race this run's writes to state.json.
    with train_lock(ctx.state_dir / "train.lock", ctx.name):
        return _sync(ctx)


def _sync(ctx: RunContext) -> Dict[str, Any]:
    state = TrainState(ctx.train_state_dir)
    if not state.exists:
        raise StageFailed(f"run '{ctx.name}' has no training state in {state.folder}; train it first.")
    tracker = run_tracker(ctx.config, ctx.project_dir)
    if not tracker.enabled:
        raise StageFailed(f"{ctx.config.source}: mlflow.enabled is false, so there is nothing to sync.")
    run_id = open_state_run(tracker, state, ctx.name, flatten(ctx.config.to_dict()),
                            {"aimed.run": ctx.name, "aimed.version": __version__})
    if run_id is None:
        raise StageFailed(f"MLflow at {tracker.uri} is still unreachable; start the server and run this again.")
    tracker.log_epochs(state.history)
    # What each stage's ending uploads (aimed.pipeline.MLFLOW_UPLOADS); missing outputs are skipped.
    uploads = ctx.mlflow_uploads("train") + ctx.mlflow_uploads("export")
    for split in EVAL_SPLITS:
        uploads += ctx.mlflow_uploads("evaluate", split)
    for paths, folder in uploads:
        tracker.log_artifacts(paths, folder)
    if state.epoch >= ctx.config.epochs:
        tracker.finish()  # training never closed the run while the server was away
    if not tracker.enabled:
        raise StageFailed(f"MLflow at {tracker.uri} failed during the upload; run this again.")
    return {"run_id": run_id, "epochs": state.epoch}
