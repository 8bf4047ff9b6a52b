"""MLflow tracking against a real ``mlflow server``: what a run logs, resume, and a server that goes down.

The server tests are marked ``mlflow_server``; the tracking-URI precedence test needs no server.

Two servers are started at once for the session (each takes several seconds to come up): the
main one, and a spare that one test stops in the middle of training and starts again later on
the same store and port. Both are stopped by process group at the end.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import urllib.request
from typing import Dict, List

import pandas as pd
import pytest
from conftest import check_aimed, free_port, update_yaml

RUN = "mnist-tf"


class MlflowServer:
    """``mlflow server`` on 127.0.0.1 with a SQLite store and proxied artifacts under ``root``."""

    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        self.port = free_port()
        self.proc = None
        root.mkdir(parents=True, exist_ok=True)

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [
            os.path.join(os.path.dirname(sys.executable), "mlflow"), "server", "--host", "127.0.0.1",
            "--port", str(self.port), "--workers", "1", "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
            "--serve-artifacts", "--artifacts-destination", str(self.root / "artifacts"),
        ]
        # No job runner: its half-dozen worker processes serve GenAI jobs, not tracking, and slow the start-up.
        env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true", MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
        self.started = time.monotonic()
        with (self.root / "server.log").open("a") as log:
            self.proc = subprocess.Popen(command, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def wait_healthy(self, timeout: float = 120) -> float:
        """Seconds from ``start`` until ``/health`` answered."""
        while True:
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as response:
                    if response.status == 200:
                        return time.monotonic() - self.started
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() - self.started > timeout:
                self.stop()
                pytest.fail(f"mlflow server did not come up:\n{(self.root / 'server.log').read_text()[-5000:]}")
            time.sleep(0.2)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server and its uvicorn worker (its whole process group)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)
        except ProcessLookupError:
            pass
        for _ in range(100):  # the uvicorn worker exits too
            if not self._group_alive():
                break
            time.sleep(0.05)
        else:
            os.killpg(self.proc.pid, signal.SIGKILL)

    def _group_alive(self) -> bool:
        """Whether a process of the server's group still runs (zombies waiting for a reaper do not count)."""
        for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == self.proc.pid and fields[0] != "Z":
                return True
        return False


@pytest.fixture(scope="session")
def mlflow_servers(tmp_path_factory):
    """``{"main": server, "spare": server}``, started together; the spare may be stopped by a test."""
    root = tmp_path_factory.mktemp("mlflow")
    servers = {name: MlflowServer(root / name) for name in ("main", "spare")}
    try:
        for server in servers.values():
            server.start()
        for name, server in servers.items():
            print(f"\nmlflow server {name} healthy after {server.wait_healthy():.1f} s at {server.uri}")
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def tracked_project(train_project, server: MlflowServer, experiment: str, epochs: int,
                    uri_in_config: bool = True) -> pathlib.Path:
    return train_project({"epochs": epochs, "mlflow": {"enabled": True, "experiment_name": experiment,
                                                       "tracking_uri": server.uri if uri_in_config else None}})


def client(server: MlflowServer):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=server.uri)


def experiment_runs(server: MlflowServer, experiment: str) -> List:
    found = client(server).get_experiment_by_name(experiment)
    return client(server).search_runs([found.experiment_id]) if found else []


def metric_steps(server: MlflowServer, run_id: str, keys) -> Dict[str, List[int]]:
    return {k: sorted(m.step for m in client(server).get_metric_history(run_id, k)) for k in keys}


def artifact_paths(server: MlflowServer, run_id: str, path: str = None) -> List[str]:
    """Every artifact file of a run, recursively."""
    found = []
    for item in client(server).list_artifacts(run_id, path):
        found += artifact_paths(server, run_id, item.path) if item.is_dir else [item.path]
    return found


def state(project: pathlib.Path) -> dict:
    try:
        return json.loads((project / "state" / RUN / "train" / "state.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}


def wait_for_epoch(project: pathlib.Path, proc: subprocess.Popen, epoch: int) -> None:
    deadline = time.monotonic() + 120
    while state(project).get("epoch", 0) < epoch:
        assert proc.poll() is None, f"aimed train ended ({proc.returncode}) before epoch {epoch}"
        assert time.monotonic() < deadline
        time.sleep(0.002)


def test_tracking_uri_is_config_then_environment_then_project_sqlite(tmp_path, monkeypatch):
    from aimed.config import ConfigStruct
    from aimed.tracking import tracking_uri

    def config(uri):
        return ConfigStruct({"mlflow": {"tracking_uri": uri}})

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri(config(None), tmp_path) == f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://from-environment:5000")
    assert tracking_uri(config(None), tmp_path) == "http://from-environment:5000"
    assert tracking_uri(config("http://from-config:5000"), tmp_path) == "http://from-config:5000"


@pytest.mark.mlflow_server
@pytest.mark.slow
def test_run_logs_params_metrics_and_artifacts(mlflow_servers, train_project, monkeypatch):
    server = mlflow_servers["main"]
    # The server is named by MLFLOW_TRACKING_URI here (the config has no tracking_uri), by the config below.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri)
    project = tracked_project(train_project, server, "logs-everything", epochs=3, uri_in_config=False)
    check_aimed(project, "train", RUN)
    check_aimed(project, "export", RUN)

    runs = experiment_runs(server, "logs-everything")
    assert len(runs) == 1
    run = runs[0]
    assert run.info.run_id == state(project)["mlflow_run_id"]
    assert run.info.status == "FINISHED" and run.info.run_name == RUN
    params = run.data.params
    assert params["epochs"] == "3" and params["model_builder.n_filters"] == "32"
    assert params["export.metric"] == "val_loss" and params["seed"] == "101" and params["data_loader.shuffle"] == "True"
    history = pd.read_csv(project / "results" / RUN / "train" / "history.csv")
    for key in history.columns.drop("epoch"):
        logged = client(server).get_metric_history(run.info.run_id, key)
        assert sorted((m.step, m.value) for m in logged) == list(zip(history["epoch"], history[key])), key
    artifacts = artifact_paths(server, run.info.run_id)
    print(f"\nartifacts: {artifacts}")
    for name in ("history.csv", "config.yaml", "model_card.json", "model/savedmodel/saved_model.pb"):
        assert name in artifacts
    assert any(a.startswith("model/savedmodel/variables/") for a in artifacts)
    assert not [a for a in artifacts if a.startswith(("model/MLmodel", "model/requirements"))], "autolog artifacts"


@pytest.mark.mlflow_server
@pytest.mark.slow
def test_killed_and_resumed_run_is_one_mlflow_run(mlflow_servers, train_project, tmp_path):
    server = mlflow_servers["main"]
    project = tracked_project(train_project, server, "resumed", epochs=4)
    with (tmp_path / "train.log").open("w") as log:
        proc = subprocess.Popen(["aimed", "train", RUN], cwd=project, stdout=log, stderr=subprocess.STDOUT)
    wait_for_epoch(project, proc, 2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    killed_at = state(project)["epoch"]
    print(f"\nkilled at epoch {killed_at}")
    assert proc.returncode == -signal.SIGKILL and killed_at < 4
    check_aimed(project, "train", RUN)

    runs = experiment_runs(server, "resumed")
    assert [r.info.run_id for r in runs] == [state(project)["mlflow_run_id"]]
    keys = ["loss", "val_loss", "sparse_categorical_accuracy", "val_sparse_categorical_accuracy"]
    assert metric_steps(server, runs[0].info.run_id, keys) == {k: [1, 2, 3, 4] for k in keys}
    assert runs[0].info.status == "FINISHED"
    first_id = runs[0].info.run_id

    # More epochs continue the same MLflow run, although a logged param (epochs) changed:
    # MLflow refuses to change a param, so the old library crashed here.
    update_yaml(project / "runs" / RUN / "config.yaml", {"epochs": 5})
    check_aimed(project, "train", RUN)
    assert [r.info.run_id for r in experiment_runs(server, "resumed")] == [first_id]
    assert metric_steps(server, first_id, keys) == {k: [1, 2, 3, 4, 5] for k in keys}
    continued = client(server).get_run(first_id)
    assert continued.info.status == "FINISHED" and continued.data.tags["aimed.epochs"] == "5"

    update_yaml(project / "runs" / RUN / "config.yaml", {"model_builder": {"dropout_rate": 0.3}})
    check_aimed(project, "train", RUN)
    new_id = state(project)["mlflow_run_id"]
    assert new_id != first_id, "a new training config must start a new MLflow run"
    assert sorted(r.info.run_id for r in experiment_runs(server, "resumed")) == sorted([first_id, new_id])
    assert metric_steps(server, first_id, keys) == {k: [1, 2, 3, 4, 5] for k in keys}
    assert metric_steps(server, new_id, keys) == {k: [1, 2, 3, 4, 5] for k in keys}

    # Another tracking server: the state's run id means nothing there, so the trained history
    # goes into a new run on it (the mlflow section is not part of the training config).
    other = f"sqlite:///{tmp_path / 'other.db'}"
    update_yaml(project / "runs" / RUN / "config.yaml", {"mlflow": {"tracking_uri": other}})
    check_aimed(project, "train", RUN)
    moved = state(project)
    assert moved["mlflow_tracking_uri"] == other and moved["epoch"] == 5
    from mlflow.tracking import MlflowClient

    other_client = MlflowClient(tracking_uri=other)
    other_runs = other_client.search_runs([other_client.get_experiment_by_name("resumed").experiment_id])
    assert [r.info.run_id for r in other_runs] == [moved["mlflow_run_id"]]
    assert {k: sorted(m.step for m in other_client.get_metric_history(moved["mlflow_run_id"], k)) for k in keys} \
        == {k: [1, 2, 3, 4, 5] for k in keys}
    check_aimed(project, "sync-mlflow", RUN)  # the recorded run is found on the new server


@pytest.mark.mlflow_server
@pytest.mark.slow
def test_sigterm_marks_the_run_killed_and_the_resumed_job_finishes_it(mlflow_servers, train_project, tmp_path):
    """SLURM's SIGTERM: the MLflow run is KILLED (not left RUNNING), and the requeued job finishes the same run."""
    server = mlflow_servers["main"]
    project = tracked_project(train_project, server, "preempted", epochs=4)
    with (tmp_path / "train.log").open("w") as log:
        proc = subprocess.Popen(["aimed", "train", RUN], cwd=project, stdout=log, stderr=subprocess.STDOUT)
    wait_for_epoch(project, proc, 2)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, (tmp_path / "train.log").read_text()[-3000:]
    run_id = state(project)["mlflow_run_id"]
    assert client(server).get_run(run_id).info.status == "KILLED"
    assert not (project / "state" / RUN / "train.lock").exists()

    check_aimed(project, "train", RUN)
    assert [r.info.run_id for r in experiment_runs(server, "preempted")] == [run_id]
    assert client(server).get_run(run_id).info.status == "FINISHED"


@pytest.mark.mlflow_server
@pytest.mark.slow
def test_server_down_mid_training_then_sync(mlflow_servers, train_project, tmp_path):
    server = mlflow_servers["spare"]
    epochs = 6
    project = tracked_project(train_project, server, "server-down", epochs=epochs)
    log = tmp_path / "train.log"
    proc = subprocess.Popen(["aimed", "train", RUN], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    wait_for_epoch(project, proc, 1)
    server.stop(signal.SIGKILL)
    down_at = state(project)["epoch"]
    print(f"\nserver killed after epoch {down_at} was committed")
    stdout, stderr = proc.communicate(timeout=180)
    log.write_text(stdout + stderr)
    assert down_at < epochs, "training ended before the server went down"
    assert proc.returncode == 0, stderr[-5000:]
    warnings = [line for line in stderr.splitlines() if "WARNING" in line and "MLflow at" in line]
    assert len(warnings) == 1, stderr[-5000:]
    assert "aimed sync-mlflow" in warnings[0]
    history = pd.read_csv(project / "results" / RUN / "train" / "history.csv")
    assert history["epoch"].tolist() == list(range(1, epochs + 1))
    export = check_aimed(project, "export", RUN)  # export carries on without the server too
    assert "MLflow at" in export.stderr

    run_id = state(project)["mlflow_run_id"]
    keys = list(history.columns.drop("epoch"))
    server.start()
    print(f"mlflow server restarted, healthy after {server.wait_healthy():.1f} s")
    before = metric_steps(server, run_id, keys)
    assert all(len(steps) < epochs for steps in before.values()), before
    check_aimed(project, "sync-mlflow", RUN)
    assert metric_steps(server, run_id, keys) == {k: list(range(1, epochs + 1)) for k in keys}
    check_aimed(project, "sync-mlflow", RUN)  # a second sync adds nothing
    assert metric_steps(server, run_id, keys) == {k: list(range(1, epochs + 1)) for k in keys}
    assert [r.info.run_id for r in experiment_runs(server, "server-down")] == [run_id]
    artifacts = artifact_paths(server, run_id)
    for name in ("history.csv", "model_card.json", "model/savedmodel/saved_model.pb"):
        assert name in artifacts
    assert client(server).get_run(run_id).info.status == "FINISHED"
