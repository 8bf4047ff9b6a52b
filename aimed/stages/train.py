"""train: fit the compiled model, committing resumable state after each epoch.

Epoch ``k``'s batches come from the data pipeline built after seeding every RNG with
``seed + k`` (see :class:`aimed.training.input_pipeline.FitSources`), so epoch ``k`` sees the same
batches whether the run got there in one go or after any number of kills. Model, optimizer and
dropout-RNG variables are checkpointed together at each epoch end, and inside epochs every
``training.checkpoint_every`` batches or minutes and on SIGTERM/SIGINT (with the running metrics
and the batch position), so a resumed run is bitwise identical to an uninterrupted one when
``deterministic`` is on. A SIGKILL loses the work since the last commit only.

Why not ``keras.callbacks.BackupAndRestore``: it restores weights and the epoch counter but not
the best metric, the history or the data order, which exact resume needs.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import math
import shutil
import sys
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from aimed import __version__
from aimed._io import atomic_write_bytes, atomic_write_json, staged_dir
from aimed._tensorflow import import_tensorflow
from aimed.data import augmentor_for, batched_split, split_batch, take
from aimed.errors import ConfigError, Preempted, StageFailed
from aimed.fingerprint import hash_value
from aimed.preflight import check_run
from aimed.provenance import explain, fingerprint_parts
from aimed.run import RunContext
from aimed.tracking import flatten, open_state_run, run_tracker
from aimed.training.distribution import is_chief, make_strategy
from aimed.training.class_weights import with_class_weights
from aimed.training.input_pipeline import EpochCache, FitSources, seed_everything
from aimed.training.preemption import StopRequests, checkpoint_interval, mid_epoch_commits
from aimed.training.lock import Lease, train_lock
from aimed.training.state import TrainState, archive

log = logging.getLogger(__name__)

#: Epochs per ``fit`` call. One call for many epochs keeps Keras' per-call set-up and iterator
#: teardown out of every epoch; the cap bounds the tf.data graphs built ahead (one per epoch).
EPOCHS_PER_FIT = 25


def training_fingerprint(ctx: RunContext) -> Tuple[str, Dict[str, Any]]:
    """The train stage's fingerprint without ``epochs``: a match means the state can be continued."""
    parts = fingerprint_parts(ctx.config, ctx.project_dir, "train")
    parts["config"] = {k: v for k, v in parts["config"].items() if k != "epochs"}
    return hash_value(parts), parts


def configure_determinism(deterministic: bool) -> None:
    import tensorflow as tf

    if deterministic:
        tf.config.experimental.enable_op_determinism()


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


def _nan_guard(first_batch: int = 0):
    import keras

    class StopOnNonFiniteLoss(keras.callbacks.Callback):
        """Stops at the first batch whose loss is NaN or inf, naming the epoch and batch.

        ``async_safe`` keeps Keras dispatching batch ends to its thread pool, as it does when no
        callback watches batches; otherwise every step would wait for its logs to reach Python.
        Checks may finish out of order, so the earliest bad batch is kept and the error is raised
        at the epoch's end: Keras waits for every batch check before calling ``on_epoch_end``, and
        this callback comes first, so the bad epoch is never validated or committed.
        """

        async_safe = True

        def __init__(self) -> None:
            super().__init__()
            self._lock = threading.Lock()
            self._first_bad: Optional[Tuple[int, float]] = None

        def on_train_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is None or math.isfinite(float(loss)):
                return
            with self._lock:
                if self._first_bad is None or first_batch + batch < self._first_bad[0]:
                    self._first_bad = (first_batch + batch, float(loss))
            self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            if self._first_bad is not None:
                batch, loss = self._first_bad
                raise StageFailed(
                    f"the training loss became {loss} at epoch {epoch + 1}, batch {batch + 1}. "
                    f"Training stopped, and the last commit before that batch is kept. Lower the learning rate, "
                    f"check the data for extreme values, or clip gradients."
                )

    return StopOnNonFiniteLoss()


def _validator(model: Any, sources: FitSources) -> Any:
    import keras

    class Validate(keras.callbacks.Callback):
        """Evaluates the epoch's own validation batches and adds them to the logs as ``val_*``."""

        def on_epoch_end(self, epoch, logs=None):
            results = model.evaluate(sources.validation(epoch), steps=sources.steps["validation"], verbose=0,
                                     return_dict=True)
            if logs is not None:
                logs.update({f"val_{name}": value for name, value in results.items()})

    return Validate()


def _epoch_committer(end_epoch: Callable[[Dict[str, float]], None]) -> Any:
    import keras

    class CommitEpoch(keras.callbacks.Callback):
        """Commits the resume state at each epoch end; it runs last, after the user's callbacks."""

        def on_epoch_end(self, epoch, logs=None):
            end_epoch({k: float(v) for k, v in (logs or {}).items()})

    return CommitEpoch()


def _verbosity(setting: Any) -> int:
    """Keras verbosity; 2 means aimed prints one line per epoch itself (for logs, not a TTY)."""
    if setting == "auto":
        return 1 if sys.stdout.isatty() else 2
    return int(setting)


def history_csv(history: List[Dict[str, float]]) -> str:
    columns = ["epoch"] + sorted({k for row in history for k in row} - {"epoch"})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: row.get(k, "") for k in columns})
    return out.getvalue()


class TensorBoardLog:
    """Epoch scalars in the layout of Keras' TensorBoard callback (``train/``, ``validation/``, ``epoch_*``).

    Steps are epoch numbers taken from the committed history, so a resumed run continues the
    curves instead of restarting them. Scalars already in the event files are not written again,
    and ``write(state.history)`` on resume adds those of epochs committed just before a kill.
    """

    SIDES = ("train", "validation")

    def __init__(self, folder) -> None:
        import tensorflow as tf

        self._tf = tf
        self.logged = {side: self._logged(folder / side) for side in self.SIDES}
        self.writers = {side: tf.summary.create_file_writer(str(folder / side)) for side in self.SIDES}

    def _logged(self, folder) -> set:
        """``(tag, step)`` of every scalar in a folder's event files."""
        found = set()
        for path in sorted(folder.glob("events.out.tfevents.*")):
            try:
                for event in self._tf.compat.v1.train.summary_iterator(str(path)):
                    found.update((value.tag, event.step) for value in event.summary.value)
            except self._tf.errors.DataLossError:  # a record cut short by a kill; it is written again
                pass
        return found

    def write(self, rows: List[Dict[str, float]]) -> None:
        for row in rows:
            step = int(row["epoch"])
            for key, value in row.items():
                if key == "epoch":
                    continue
                side, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
                tag = f"epoch_{name}"
                if (tag, step) in self.logged[side]:
                    continue
                with self.writers[side].as_default():
                    self._tf.summary.scalar(tag, value, step=step)
                self.logged[side].add((tag, step))
        for writer in self.writers.values():
            writer.flush()


def _open_state(ctx: RunContext, writable: bool, from_previous: bool) -> TrainState:
    """The matching resume state, or a fresh one after moving a stale state aside.

    A state is stale when anything but ``epochs`` changed, or when ``epochs`` went below the
    epochs already trained (that run is a different training, and its weights are gone).
    ``from_previous`` continues from the commit before the newest one.
    """
    folder = ctx.state_dir / "train"
    fingerprint, parts = training_fingerprint(ctx)
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
                log.info("training %s changed since the last run; old state moved to %s", ", ".join(changed), moved)
            state = TrainState(folder, writable)
            state.data = {}
    if not state.exists:
        state.start(fingerprint, parts)
    return state


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
                return _train(ctx, _strategy(ctx), lease, requests, from_previous)
        import_tensorflow()
        check_run(ctx)
        strategy = _strategy(ctx)
        if not is_chief(strategy):
            return _train(ctx, strategy, None, requests, from_previous)
        with train_lock(lock, ctx.name) as lease:
            return _train(ctx, strategy, lease, requests, from_previous)


def _strategy(ctx: RunContext) -> Any:
    import_tensorflow()
    configure_determinism(ctx.config.deterministic)
    strategy = make_strategy(ctx.config.distribution, ctx.config.source)
    log.info("training %s with %s on %d replica(s)", ctx.name, type(strategy).__name__, strategy.num_replicas_in_sync)
    return strategy


def _train(ctx: RunContext, strategy: Any, lease: Optional[Lease], requests: StopRequests,
           from_previous: bool) -> Dict[str, Any]:
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
    state = _open_state(ctx, chief, from_previous)
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
    verbose = _verbosity(config.training.verbose)

    cache_dir = state.folder / "cache"
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
                           if better else best)
        if chief:
            tensorboard.write(state.history[-1:])
            tracker.log_epochs(state.history[-1:])
        if verbose == 2:
            print(f"epoch {state.epoch}/{config.epochs}: " + ", ".join(f"{k}={v:.5g}" for k, v in logs.items()), flush=True)

    def commit_batches(epoch: int, done: int) -> None:
        # An unfinished epoch whose running loss is not finite is left to the NaN guard, uncommitted.
        if chief:
            lease.check()
        if all(np.isfinite(v.numpy()).all() for v in model.metrics_variables):
            state.commit_batch(model, done)
            log.info("committed epoch %d, batch %d", epoch + 1, done)

    every_batches, every_seconds = checkpoint_interval(config.training.checkpoint_every)
    if config.distribution.strategy == "multi_worker":
        # Workers would see a signal or a clock at different batches and desynchronise their
        # collectives; batch counts are the same on every worker.
        every_seconds = None
    user_callbacks = list(builder.get_callbacks() or [])
    try:
        with requests.deferred() if config.distribution.strategy != "multi_worker" else contextlib.nullcontext():
            while state.epoch < config.epochs and not model.stop_training:
                first_batch = state.batch
                last = state.epoch + 1 if first_batch else min(state.epoch + EPOCHS_PER_FIT, config.epochs)
                epochs = range(state.epoch, last)
                sources = FitSources(build, epochs, config.seed, caches, config.deterministic, first_batch)
                metric_values = [v.numpy() for v in model.metrics_variables] if first_batch else None
                # Validation runs in an early epoch-end callback, so later callbacks see the val_ metrics
                # as they do with fit's own validation_data.
                callbacks = ([_nan_guard(first_batch), _validator(model, sources)] + user_callbacks
                             + [_epoch_committer(end_epoch),
                                mid_epoch_commits(commit_batches, requests, every_batches, every_seconds, first_batch,
                                                  metric_values)])
                model.fit(
                    sources.train, steps_per_epoch=sources.steps["train"] - first_batch, initial_epoch=epochs.start,
                    epochs=epochs.stop, callbacks=callbacks, verbose=1 if verbose == 1 else 0, shuffle=False,
                )

        if state.data.get("best") is None:
            raise StageFailed(
                f"no epoch of run '{ctx.name}' has a finite '{metric}'; there is no best epoch to export. "
                f"Check the history in {state.folder / 'state.json'}."
            )
    except BaseException as exc:
        if tracker is not None:  # a resumed job sets the run RUNNING again
            tracker.finish("KILLED" if isinstance(exc, (KeyboardInterrupt, Preempted)) else "FAILED")
        raise
    if not chief:
        return {"epochs": state.epoch, "best": state.data["best"]}
    summary = _publish(ctx, model, state)
    tracker.log_artifacts([ctx.stage_dir("train") / "history.csv", ctx.config_path])
    tracker.finish()
    return summary


def _publish(ctx: RunContext, model: Any, state: TrainState) -> Dict[str, Any]:
    """Write history.csv, summary.json and the best epoch's model to ``results/<run>/train``."""
    import pandas

    from aimed._plots import save_training_curves
    from aimed.training.state import assign_variables

    assign_variables(list(model.variables), state.verify_best())
    summary = {
        "epochs": state.epoch,
        "best": state.data["best"],
        "mlflow_run_id": state.data.get("mlflow_run_id"),
        "fingerprint": state.data["fingerprint"],
    }
    with staged_dir(ctx.stage_dir("train")) as out:
        atomic_write_bytes(out / "history.csv", history_csv(state.history).encode())
        atomic_write_json(out / "summary.json", summary)
        model.save(out / "best_model.keras")
        save_training_curves(out / "curves.png", pandas.read_csv(out / "history.csv"))
        ctx.record_fingerprint("train", out)
    return summary
