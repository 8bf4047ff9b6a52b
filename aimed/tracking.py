"""MLflow tracking with explicit logging (no autolog) that never stops training.

One MLflow run belongs to one training state: its id is stored beside the resume state, so a
resumed job logs into the same run and a new training config starts a new one. If the server
cannot be reached, aimed warns once and carries on; ``history.csv`` keeps every metric.
"""

from __future__ import annotations

import logging
import os
import pathlib
import time
from typing import Any, Dict, Iterable, List, Optional

log = logging.getLogger(__name__)

# An unreachable server must cost seconds, not MLflow's default minutes of retries.
_FAST_FAILURE_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def tracking_uri(config: Any, project_dir: pathlib.Path) -> str:
    """The tracking URI: the config's, else ``MLFLOW_TRACKING_URI``, else SQLite at the project root."""
    return config.mlflow.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_dir / 'mlflow.db'}"


def flatten(mapping: Dict[str, Any], prefix: str = "") -> Dict[str, str]:
    """``{"a": {"b": 1}}`` as ``{"a.b": "1"}``, the form of MLflow params."""
    flat: Dict[str, str] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)[:6000]
    return flat


class Tracker:
    """Logs one run's params, per-epoch metrics and artifacts to MLflow, or warns once and stops trying."""

    def __init__(self, uri: str, experiment: str, enabled: bool = True) -> None:
        self.uri = uri
        self.experiment = experiment
        self.enabled = enabled
        self.run_id: Optional[str] = None
        self._client = None
        self._logged_steps: Optional[Dict[str, set]] = None
        for key, value in _FAST_FAILURE_ENV.items():
            os.environ.setdefault(key, value)

    def _guard(self, what: str, func, *args, **kwargs):
        if not self.enabled:
            return None
        try:
            return func(*args, **kwargs)
        except Exception as exc:  # any tracking failure must leave training running
            self.enabled = False
            log.warning(
                "MLflow at %s failed while %s (%s: %s); training continues without MLflow, metrics stay in "
                "history.csv. Upload them later with `aimed sync-mlflow <run>`.",
                self.uri, what, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "",
            )
            return None

    def _connect(self):
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self.uri)
        return self._client

    def _experiment_id(self) -> str:
        client = self._connect()
        found = client.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        try:
            return client.create_experiment(self.experiment)
        except Exception:  # created concurrently by a parallel job
            return client.get_experiment_by_name(self.experiment).experiment_id

    def open(self, run_id: Optional[str], run_name: str, params: Dict[str, str], tags: Dict[str, str]) -> Optional[str]:
        """Reuse ``run_id`` or create a run with ``params``; return the run id, or None if offline."""

        def _open():
            from mlflow.entities import Param, RunTag

            client = self._connect()
            if run_id:
                if client.get_run(run_id).info.status != "RUNNING":  # resumed after a failure or a finished fit
                    client.update_run(run_id, status="RUNNING")
                self.run_id = run_id
            else:
                run = client.create_run(self._experiment_id(), run_name=run_name,
                                        tags={"mlflow.runName": run_name, **tags})
                self.run_id = run.info.run_id
                items = [Param(k, v) for k, v in sorted(params.items())]
                for start in range(0, len(items), 100):
                    client.log_batch(self.run_id, params=items[start:start + 100])
            client.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in tags.items()])
            return self.run_id

        return self._guard("opening the run", _open)

    def attach(self, run_id: Optional[str]) -> None:
        """Log into an existing run (created by training); without one, logging calls do nothing."""
        self.run_id = run_id if self.enabled else None

    def _steps_logged(self, key: str) -> set:
        if self._logged_steps is None:
            self._logged_steps = {}
        if key not in self._logged_steps:
            history = self._connect().get_metric_history(self.run_id, key)
            self._logged_steps[key] = {m.step for m in history}
        return self._logged_steps[key]

    def log_epochs(self, rows: Iterable[Dict[str, Any]]) -> None:
        """Log each row's metrics at step ``epoch``, skipping steps the run already has."""
        if self.run_id is None:
            return

        def _log():
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            metrics: List[Any] = []
            for row in rows:
                step = int(row["epoch"])
                for key, value in row.items():
                    if key == "epoch" or step in self._steps_logged(key):
                        continue
                    metrics.append(Metric(key, float(value), now, step))
                    self._logged_steps[key].add(step)
            for start in range(0, len(metrics), 500):
                self._connect().log_batch(self.run_id, metrics=metrics[start:start + 500])

        self._guard("logging metrics", _log)

    def log_metrics(self, metrics: Dict[str, float]) -> None:
        """Set summary metrics (step 0), replacing earlier values in the run's latest view."""
        if self.run_id is None:
            return

        def _log():
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            items = [Metric(k, float(v), now, 0) for k, v in sorted(metrics.items())]
            for start in range(0, len(items), 500):
                self._connect().log_batch(self.run_id, metrics=items[start:start + 500])

        self._guard("logging metrics", _log)

    def log_artifacts(self, paths: Iterable[pathlib.Path], artifact_path: Optional[str] = None) -> None:
        """Upload files or folders under ``artifact_path``; a rerun overwrites them."""
        if self.run_id is None:
            return

        def _log():
            client = self._connect()
            for path in paths:
                if path.is_dir():
                    sub = f"{artifact_path}/{path.name}" if artifact_path else path.name
                    client.log_artifacts(self.run_id, str(path), sub)
                elif path.is_file():
                    client.log_artifact(self.run_id, str(path), artifact_path)

        self._guard("uploading artifacts", _log)

    def finish(self, status: str = "FINISHED") -> None:
        if self.run_id is not None:
            self._guard("closing the run", lambda: self._connect().set_terminated(self.run_id, status))


def open_state_run(tracker: Tracker, state: Any, run_name: str, params: Dict[str, str],
                   tags: Dict[str, str]) -> Optional[str]:
    """Open the MLflow run a training state records, or a new one, and record it in the state.

    A run id is only valid on the server that issued it, so the state keeps the tracking URI
    too: after ``mlflow.tracking_uri`` changes, a new run is created on the new server (the
    caller then logs the whole history into it) instead of failing on an unknown id forever.
    """
    recorded = {"mlflow_run_id": state.data.get("mlflow_run_id"),
                "mlflow_tracking_uri": state.data.get("mlflow_tracking_uri", tracker.uri)}
    same_server = recorded["mlflow_tracking_uri"] == tracker.uri
    run_id = tracker.open(recorded["mlflow_run_id"] if same_server else None, run_name, params, tags)
    current = {"mlflow_run_id": run_id, "mlflow_tracking_uri": tracker.uri}
    if run_id is not None and current != {k: state.data.get(k) for k in current}:
        state.update(current)
    return run_id


def run_tracker(config: Any, project_dir: pathlib.Path) -> Tracker:
    """The tracker of a run config: its URI and experiment, disabled if ``mlflow.enabled`` is false."""
    experiment = config.mlflow.experiment_name or config.project_name or pathlib.Path(project_dir).resolve().name
    return Tracker(tracking_uri(config, project_dir), experiment,
                   enabled=config.mlflow.enabled)
