"""The training engine: fit the compiled model to ``epochs``, committing resumable state as it goes.

Epoch ``k``'s batches come from the data pipeline built after seeding every RNG with
``seed + k`` (see :class:`aimed.training.input_pipeline.FitSources`), so epoch ``k`` sees the same
batches whether the run got there in one go or after any number of stops. Model, optimizer,
metric and dropout-RNG variables are committed together at each epoch end, and inside epochs
every ``training.checkpoint_every`` batches or minutes and on SIGTERM/SIGINT (with the batch
position), so a resumed run is bitwise identical to an uninterrupted one when ``deterministic``
is on. A SIGKILL loses the work since the last commit only.

Why not ``keras.callbacks.BackupAndRestore``: it restores weights and the epoch counter but not
the best metric, the history, the running metrics or the data order, which exact resume needs.
"""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from aimed import __version__
from aimed.data import augmentor_for, batched_split, split_batch, take
from aimed.errors import ConfigError, Preempted, StageFailed
from aimed.fingerprint import hash_value
from aimed.provenance import explain, variant_parts
from aimed.run import RunContext
from aimed.tracking import flatten, open_state_run, run_tracker
from aimed.training.callbacks import epoch_committer, mid_epoch_commits, nan_guard, validator
from aimed.training.class_weights import with_class_weights
from aimed.training.input_pipeline import EpochCache, FitSources, seed_everything
from aimed.training.lock import Lease
from aimed.training.logs import TensorBoardLog, verbosity
from aimed.training.preemption import StopRequests, checkpoint_interval
from aimed.training.state import TrainState, archive
from aimed.training.user_callbacks import UserCallbacks

log = logging.getLogger(__name__)

#: Epochs per ``fit`` call. One call for many epochs keeps Keras' per-call set-up and iterator
#: teardown out of every epoch; the cap bounds the tf.data graphs built ahead (one per epoch).
EPOCHS_PER_FIT = 25


@dataclass
class Trained:
    """What a finished training leaves for publishing: the model (at its last epoch) and its state."""

    model: Any
    state: TrainState
    tracker: Any


def logged_metric_names(model: Any, batches: Any) -> List[str]:
    """Names fit will log, from one evaluation batch: ``loss``, metrics, and their ``val_`` twins."""
    x, y, w = split_batch(next(iter(take(batches, 1))))
    names = list(model.test_on_batch(x, y, sample_weight=w, return_dict=True))
    return names + [f"val_{n}" for n in names]


def is_better(value: float, best: Optional[Dict[str, Any]], mode: str) -> bool:
    if value is None or not math.isfinite(value):
        return False
    if best is None:
        return True
    return value < best["value"] if mode == "min" else value > best["value"]


def open_state(ctx: RunContext, writable: bool, from_previous: bool) -> TrainState:
    """The matching resume state, or a fresh one after moving a stale state aside.

    A state is stale when anything but ``epochs`` changed, or when ``epochs`` went below the
    epochs already trained (that run is a different training, and its weights are gone).
    ``from_previous`` continues from the commit before the newest one.
    """
    folder = ctx.train_state_dir
    # The resume variant leaves out epochs: a match means the state can be continued.
    parts = variant_parts(ctx.config, ctx.project_dir, "train", "resume")
    fingerprint = hash_value(parts)
    state = TrainState(folder, writable, from_previous)
    if from_previous:
        log.info("continuing run '%s' from its previous commit: %d epoch(s) and %d batch(es)", ctx.name,
                 state.epoch, state.batch)
    if state.exists:
        changed = explain(state.data, parts)
        if state.epoch > ctx.config.epochs:
            changed.append(f"epochs (lowered below the {state.epoch} trained)")
        if changed:
            if writable:
                moved = archive(folder, ctx.state_dir / "tensorboard")
                log.info("the training must start again, as its inputs changed since the last run (%s); old state moved to %s",
                         "; ".join(changed), moved)
            state = TrainState(folder, writable)
            state.data = {}
    if not state.exists:
        state.start(fingerprint, parts)
    return state


def train(ctx: RunContext, strategy: Any, lease: Optional[Lease], requests: StopRequests,
          from_previous: bool) -> Trained:
    """Train under ``strategy``; the chief holds ``lease`` and writes, another worker gets None."""
    chief = lease is not None
    config = ctx.config
    seed_everything(config.seed)
    loader, augmentor, preprocessor = ctx.data_loader(), ctx.augmentor(), ctx.preprocessor()
    builder = ctx.model_builder()
    with strategy.scope():
        model = builder.get_compiled_model()
        val_batches, _, _ = batched_split(loader, augmentor_for(config, augmentor, "validation"), preprocessor,
                                          "validation")
        names = logged_metric_names(model, val_batches)
        model.optimizer.build(model.trainable_variables)
    metric, mode = config.export.metric, config.export.mode
    if metric not in names:
        raise ConfigError(
            f"{config.source}: key 'export.metric' is '{metric}', but the model logs only {', '.join(names)}. "
            f"Set export.metric to one of these."
        )
    class_weight = builder.get_class_weight()
    if class_weight and len(model.outputs) > 1:
        raise StageFailed(
            f"{config.model_builder_class}.get_class_weight() returned class weights, but the model has "
            f"{len(model.outputs)} outputs: aimed cannot tell which one they are for. Return None from "
            f"get_class_weight() and put the class weights into the per-sample weights of your data instead."
        )

    # Opened only now: a config error must not move the resume state aside.
    state = open_state(ctx, chief, from_previous)
    state.restore(model)
    if state.epoch or state.batch:
        log.info("resuming run '%s' at epoch %d of %d, batch %d", ctx.name, state.epoch + 1, config.epochs,
                 state.batch + 1)

    tracker = run_tracker(config, ctx.project_dir) if chief else None
    if tracker is not None:
        open_state_run(tracker, state, ctx.name, flatten(config.to_dict()),
                       {"aimed.run": ctx.name, "aimed.version": __version__, "aimed.epochs": str(config.epochs)})
        tracker.log_epochs(state.history)
    tensorboard = TensorBoardLog(ctx.state_dir / "tensorboard") if chief else None
    if tensorboard is not None:
        tensorboard.write(state.history)
    verbose = verbosity(config.training.verbose)

    # Beside the resume state, not in it: DVC versions the resume state, and a cache is rebuilt anyway.
    cache_dir = ctx.state_dir / "cache"
    shutil.rmtree(cache_dir, ignore_errors=True)  # a killed run may have left a half-written disk cache
    caches = {split: EpochCache(config.cache, cache_dir, split, config.deterministic) for split in ("train", "validation")}

    def build(split: str) -> Tuple[Any, int]:
        # Keras refuses class_weight for generators and weighted sources: aimed weights the samples itself.
        batches, _, n_iter = batched_split(loader, augmentor_for(config, augmentor, split), preprocessor, split)
        return with_class_weights(batches, class_weight, list(model.outputs[0].shape)), n_iter

    def end_epoch(logs: Dict[str, float]) -> None:
        if chief:
            lease.check()  # a holder whose lease lapsed (suspended, partitioned) must not overwrite the taker's state
        value = logs.get(metric)
        best = state.data.get("best")
        better = is_better(value, best, mode)
        state.commit_epoch(model, logs, better, {"metric": metric, "mode": mode, "value": value, "epoch": state.epoch + 1}
                           if better else best, user_callbacks.states())
        if chief:
            tensorboard.write(state.history[-1:])
            tracker.log_epochs(state.history[-1:])
        if verbose == 2:
            print(f"epoch {state.epoch}/{config.epochs}: " + ", ".join(f"{k}={v:.5g}" for k, v in logs.items()), flush=True)

    def commit_batches(epoch: int, done: int) -> bool:
        if chief:
            lease.check()
        # An unfinished epoch whose running loss is not finite is left to the NaN guard, uncommitted.
        if not all(np.isfinite(v.numpy()).all() for v in model.metrics_variables):
            return False
        state.commit_batch(model, done, user_callbacks.states())
        log.info("committed epoch %d, batch %d", epoch + 1, done)
        return True

    multi_worker = config.distribution.strategy == "multi_worker"
    every_batches, every_seconds = checkpoint_interval(config.training.checkpoint_every)
    if multi_worker:
        # Workers would see a signal or a clock at different batches and desynchronise their
        # collectives; batch counts are the same on every worker.
        every_seconds = None
    user_callbacks = UserCallbacks(builder.get_callbacks() or [], state.data.get("callbacks"),
                                   finished=lambda: state.epoch >= config.epochs or model.stop_training)
    if state.data.get("stopped_early"):
        log.info("run '%s' was stopped early by a callback after epoch %d: nothing to train", ctx.name, state.epoch)
    try:
        with contextlib.nullcontext() if multi_worker else requests.deferred():
            while state.epoch < config.epochs and not model.stop_training and not state.data.get("stopped_early"):
                first_batch = state.batch
                last = state.epoch + 1 if first_batch else min(state.epoch + EPOCHS_PER_FIT, config.epochs)
                epochs = range(state.epoch, last)
                sources = FitSources(build, epochs, config.seed, caches, config.deterministic, first_batch)
                metric_values = [v.numpy() for v in model.metrics_variables] if first_batch else None
                # Validation runs in an early epoch-end callback, so later callbacks see the val_ metrics
                # as they do with fit's own validation_data.
                callbacks = ([nan_guard(first_batch), validator(model, sources)] + user_callbacks.for_fit()
                             + [epoch_committer(end_epoch),
                                mid_epoch_commits(commit_batches, requests, every_batches, every_seconds, first_batch,
                                                  metric_values)])
                model.fit(
                    sources.train, steps_per_epoch=sources.steps["train"] - first_batch, initial_epoch=epochs.start,
                    epochs=epochs.stop, callbacks=callbacks, verbose=1 if verbose == 1 else 0, shuffle=False,
                )

        if model.stop_training and state.epoch < config.epochs:
            # A finished training to a rerun of the stage, not one to continue.
            log.info("a callback stopped the training after epoch %d of %d", state.epoch, config.epochs)
            state.update({"stopped_early": state.epoch})
        if state.data.get("best") is None:
            raise StageFailed(
                f"no epoch of run '{ctx.name}' has a finite '{metric}'; there is no best epoch to export. "
                f"Check the history in {state.folder / 'state.json'}."
            )
    except BaseException as exc:
        if tracker is not None:  # a resumed job sets the run RUNNING again
            tracker.finish("KILLED" if isinstance(exc, (KeyboardInterrupt, Preempted)) else "FAILED")
        raise
    return Trained(model, state, tracker)
