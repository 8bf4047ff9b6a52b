"""train: take the run's lock, train (:mod:`aimed.training.loop`), publish the best epoch to ``results/<run>/train``."""

from __future__ import annotations

import logging
from typing import Any, Dict

from aimed._io import atomic_write_bytes, atomic_write_json
from aimed._tensorflow import import_tensorflow
from aimed.pipeline import BEST_MODEL, HISTORY, TRAIN_SUMMARY, file_name
from aimed.preflight import check_run
from aimed.run import RunContext
from aimed.training.distribution import is_chief, make_strategy
from aimed.training.lock import train_lock
from aimed.training.logs import history_csv
from aimed.training.loop import Trained, train
from aimed.training.preemption import StopRequests
from aimed.training.state import assign_variables

log = logging.getLogger(__name__)


def run(ctx: RunContext, from_previous: bool = False) -> Dict[str, Any]:
    """Train the run's model to ``epochs``, resuming from ``state/<run>/train`` when it matches.

    Under a multi-worker strategy every worker trains; only the chief takes the lock, writes
    the state and publishes results. Any other process is the chief and takes the lock before
    TensorFlow starts, so a second training of the run refuses at once. SIGTERM and SIGINT
    commit at the next batch boundary and raise :class:`aimed.errors.Preempted`.
    """
    lock = ctx.state_dir / "train.lock"
    with StopRequests(ctx.name) as requests:
        if ctx.config.distribution.strategy != "multi_worker":
            with train_lock(lock, ctx.name) as lease:
                # After the lock, which a second training must meet at once, and before any state is written.
                import_tensorflow()
                check_run(ctx)
                return _publish(ctx, train(ctx, _strategy(ctx), lease, requests, from_previous))
        import_tensorflow()
        check_run(ctx)
        strategy = _strategy(ctx)
        if not is_chief(strategy):
            trained = train(ctx, strategy, None, requests, from_previous)
            return {"epochs": trained.state.epoch, "best": trained.state.data["best"]}
        with train_lock(lock, ctx.name) as lease:
            return _publish(ctx, train(ctx, strategy, lease, requests, from_previous))


def _strategy(ctx: RunContext) -> Any:
    import tensorflow as tf

    if ctx.config.deterministic:
        tf.config.experimental.enable_op_determinism()
    strategy = make_strategy(ctx.config.distribution, ctx.config.source)
    log.info("training %s with %s on %d replica(s)", ctx.name, type(strategy).__name__, strategy.num_replicas_in_sync)
    return strategy


def _publish(ctx: RunContext, trained: Trained) -> Dict[str, Any]:
    """Write history.csv, summary.json and the best epoch's model to ``results/<run>/train``."""
    import pandas

    from aimed._plots import save_training_curves

    model, state = trained.model, trained.state
    assign_variables(list(model.variables), state.verify_best())
    summary = {
        "epochs": state.epoch,
        "best": state.data["best"],
        "mlflow_run_id": state.data.get("mlflow_run_id"),
        "fingerprint": state.data["fingerprint"],
    }
    with ctx.publishing("train", tracker=trained.tracker) as published:
        out = published.folder
        atomic_write_bytes(out / file_name(HISTORY), history_csv(state.history).encode())
        atomic_write_json(out / file_name(TRAIN_SUMMARY), summary)
        model.save(out / file_name(BEST_MODEL))
        save_training_curves(out / "curves.png", pandas.read_csv(out / file_name(HISTORY)))
    trained.tracker.finish()
    return summary
