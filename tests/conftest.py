"""Shared fixtures: a shrunken copy of the project, and a Snakemake runner.

The copy follows the lightning-hydra-template pattern: the real ``config/config.yaml`` and
``runs/*/config.yaml`` are copied and only a few keys are overridden (dataset limits, epochs,
MLflow tracking URI), so tests always exercise the configs that users run.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
from typing import Any, Callable, Dict, Iterator, List, Mapping, Tuple

import pytest
import yaml

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

#: What a project needs to run the workflow: copied by ``project_copy``.
PROJECT_ITEMS = ("Snakefile", "workflow", "config", "runs", "src", "data", "profiles")
_COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".snakemake", ".pytest_cache")

#: Sizes of the shrunken project: images kept per split, and training epochs.
SHRUNK = {"train": 64, "validation": 32, "test": 32, "epochs": 2}

#: Environment of every test and every subprocess it starts.
TEST_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DVC_NO_ANALYTICS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
}


def pytest_configure(config: pytest.Config) -> None:
    os.environ.update(TEST_ENV)
    # `aimed`, `snakemake` and `python` in subprocesses resolve to this interpreter's environment.
    bin_dir = os.path.dirname(sys.executable)
    path = os.environ.get("PATH", "")
    if path.split(os.pathsep)[0] != bin_dir:
        os.environ["PATH"] = os.pathsep.join(p for p in (bin_dir, path) if p)


#: The test files that take minutes, longest first. ``make test`` hands whole files to two
#: pytest-xdist workers in collection order; starting with these keeps a worker from ending
#: alone on a long file. (test_slurm.py and test_workflow.py go to different workers first:
#: the first waits on SLURM, the second builds the shared ``built_template``.)
LONGEST_FILES = ("test_slurm.py", "test_workflow.py", "test_zoo_a.py", "test_zoo_b.py", "test_migration.py",
                 "test_resume.py", "test_preemption.py",
                 "test_template.py", "test_mlflow_server.py", "test_dvc.py", "test_export.py", "test_report_html.py",
                 "test_rerun_matrix.py", "test_class_weights.py", "test_evaluate.py", "test_bind.py",
                 "test_lock.py")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """The zoo tests (tests/zoo_harness.py) run for the projects their module names in ``PROJECTS``.

    The stop-and-resume check, whose two trainings per run cost most, runs for those of
    ``PREEMPTED_PROJECTS``: one project of each training style not covered by the examples.
    """
    if "zoo_name" in metafunc.fixturenames:
        metafunc.parametrize("zoo_name", getattr(metafunc.module, "PROJECTS", ()))
    if "preempted_zoo_name" in metafunc.fixturenames:
        metafunc.parametrize("preempted_zoo_name", getattr(metafunc.module, "PREEMPTED_PROJECTS", ()))


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


def deep_update(base: Dict[str, Any], overrides: Mapping[str, Any]) -> Dict[str, Any]:
    """Merge ``overrides`` into ``base`` in place, recursing into nested mappings; return ``base``."""
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = value
    return base


def update_yaml(path: pathlib.Path, overrides: Mapping[str, Any]) -> Dict[str, Any]:
    """Apply ``overrides`` to the YAML mapping in ``path`` (comments are not kept); return it."""
    data = yaml.safe_load(path.read_text()) or {}
    deep_update(data, overrides)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return data


def copy_project(dest: pathlib.Path) -> pathlib.Path:
    """Copy the real project's workflow files (``PROJECT_ITEMS``) into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    for item in PROJECT_ITEMS:
        src = REPO_ROOT / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=_COPY_IGNORE)
        elif src.is_file():
            shutil.copy2(src, dest / item)
        else:
            raise FileNotFoundError(f"{src} is missing: the test project copy needs {', '.join(PROJECT_ITEMS)}")
    return dest


def shrink_project(project: pathlib.Path, mlflow_db: pathlib.Path) -> None:
    """Override the copied configs so the whole workflow runs in a few minutes on a CPU."""
    update_yaml(
        project / "config" / "config.yaml",
        {
            "datasets": {
                "mnist": {f"limit_{split}": SHRUNK[split] for split in ("train", "validation", "test")}
            }
        },
    )
    for run_config in sorted((project / "runs").glob("*/config.yaml")):
        update_yaml(
            run_config,
            {"epochs": SHRUNK["epochs"], "mlflow": {"tracking_uri": f"sqlite:///{mlflow_db}"}},
        )


@pytest.fixture
def shrunk() -> Dict[str, int]:
    """Sizes of ``project_copy``: images per split and epochs."""
    return dict(SHRUNK)


@pytest.fixture
def project_copy(tmp_path: pathlib.Path) -> pathlib.Path:
    """A shrunken copy of the project in ``tmp_path/project``, with its own MLflow database."""
    project = copy_project(tmp_path / "project")
    shrink_project(project, tmp_path / "mlflow.db")
    return project


@pytest.fixture
def run_snakemake() -> Callable[..., subprocess.CompletedProcess]:
    """Run ``snakemake ARGS`` in a project folder; stdout and stderr come back merged in ``.stdout``.

    Usage: ``run_snakemake(project, "-n", "--cores", "1", timeout=120, check=True)``. With
    ``check`` a non-zero exit fails the test and shows Snakemake's output.
    """

    def run(project: pathlib.Path, *args: str, timeout: float = 300, check: bool = False):
        proc = subprocess.run(
            [sys.executable, "-m", "snakemake", *args],
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            pytest.fail(f"snakemake {' '.join(args)} exited with {proc.returncode}:\n{proc.stdout[-20000:]}")
        return proc

    return run


# ----------------------------------------------------------------------------- templates shared by workers


@contextlib.contextmanager
def shared_template(tmp_path_factory, name: str) -> Iterator[tuple]:
    """``with shared_template(f, name) as (project, missing):`` build ``project`` only if ``missing``.

    A session template is built once per test run, also under pytest-xdist (``make test`` runs
    two workers): the first worker that needs it builds it while holding a file lock, and the
    others wait, then reuse it. It is built where it stays (its configs hold absolute paths), and
    a marker written after a successful build tells the others that it is complete.
    """
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = tmp_path_factory.getbasetemp().parent  # pytest-N: this run's, shared by its workers
    else:
        root = tmp_path_factory.getbasetemp()
    project, built = root / name / "project", root / name / "built"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if built.is_file():
            yield project, False
            return
        shutil.rmtree(project.parent, ignore_errors=True)  # what a failed build left behind
        project.parent.mkdir(parents=True)
        yield project, True
        built.touch()


# ----------------------------------------------------------------------------- training projects

#: Overrides of every run config in ``train_project``: a few seconds per training run.
TRAIN_OVERRIDES = {
    "epochs": 5,
    "batch_size": 16,
    "model_builder": {"n_filters": 32},
    "mlflow": {"enabled": False},
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_tf_config_workers(project: pathlib.Path, run: str, count: int = 2) -> Tuple[List[subprocess.Popen], List[int]]:
    """``count`` local ``aimed train`` processes of one multi-worker cluster on 127.0.0.1 (TF_CONFIG), and their ports.

    Each process's output (stdout and stderr) is its ``.stdout`` pipe, as text.
    """
    ports = [free_port() for _ in range(count)]
    workers = [f"127.0.0.1:{port}" for port in ports]
    procs = []
    for index in range(count):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": {"worker": workers},
                                                     "task": {"type": "worker", "index": index}}))
        procs.append(subprocess.Popen(["aimed", "train", run], cwd=project, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    return procs, ports


def run_aimed(project: pathlib.Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run ``aimed ARGS`` in ``project`` as a real process; stdout and stderr come back separately."""
    return subprocess.run(["aimed", *args], cwd=project, capture_output=True, text=True, timeout=timeout)


def check_aimed(project: pathlib.Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """``run_aimed`` that fails the test, showing the output, unless the command exits 0."""
    proc = run_aimed(project, *args, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f"aimed {' '.join(args)} exited with {proc.returncode}:\n{proc.stdout[-5000:]}\n{proc.stderr[-10000:]}")
    return proc


@pytest.fixture(scope="session")
def train_template(tmp_path_factory) -> pathlib.Path:
    """A shrunken project copy with its dataset prepared and validated for both example runs (never modified).

    ``train_project`` copies it; the copies share nothing, so each test owns its state and results.
    """
    with shared_template(tmp_path_factory, "train_template") as (project, missing):
        if missing:
            _build_train_template(project)
    return project


def _build_train_template(project: pathlib.Path) -> None:
    copy_project(project)
    shrink_project(project, project / "mlflow.db")
    for run_config in sorted((project / "runs").glob("*/config.yaml")):
        update_yaml(run_config, TRAIN_OVERRIDES)
    prepare_dataset(project / "datasets" / "mnist", **{s: SHRUNK[s] for s in ("train", "validation", "test")})
    # Both validations at once: each is mostly TensorFlow's start-up.
    jobs = {run: subprocess.Popen(["aimed", "validate-data", run], cwd=project, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True) for run in ("mnist-tf", "mnist-gen")}
    for run, job in jobs.items():
        out, _ = job.communicate(timeout=180)
        if job.returncode != 0:
            pytest.fail(f"aimed validate-data {run} failed in the training template:\n{out[-10000:]}")


@pytest.fixture
def train_project(train_template, tmp_path) -> Callable[..., pathlib.Path]:
    """``train_project(overrides=None, name="project")``: a fresh copy of ``train_template`` in ``tmp_path``.

    ``overrides`` (nested keys, as in ``update_yaml``) apply to both example run configs.
    """

    def make(overrides: Mapping[str, Any] = None, name: str = "project") -> pathlib.Path:
        project = tmp_path / name
        shutil.copytree(train_template, project, symlinks=True)
        for run_config in sorted((project / "runs").glob("*/config.yaml")):
            update_yaml(run_config, overrides or {})
        return project

    return make


def prepare_dataset(out: pathlib.Path, **limits: int) -> pathlib.Path:
    """Write a small MNIST dataset with the project's prepare script, in-process (no interpreter start-up)."""
    import importlib.util
    import signal

    spec = importlib.util.spec_from_file_location("_prepare_mnist", REPO_ROOT / "workflow" / "scripts" / "prepare_mnist.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    argv = ["--sample", str(REPO_ROOT / "data" / "mnist_sample.npz"), "--out", str(out)]
    for split, n in limits.items():
        argv += [f"--limit-{split}", str(n)]
    handler = signal.getsignal(signal.SIGTERM)
    try:
        module.main(argv)
    finally:
        signal.signal(signal.SIGTERM, handler)  # the script installs its own SIGTERM handler
    return out


# ----------------------------------------------------------------------------- built projects (reruns, DVC)

#: Images per split of ``built_template``, and the overrides of its run configs: seconds per stage.
BUILT_SIZES = {"train": 48, "validation": 24, "test": 24}
BUILT_OVERRIDES = {
    "epochs": 2,
    "batch_size": 16,
    "model_builder": {"n_filters": 32},
    "mlflow": {"enabled": False},
}


def project_env(project: pathlib.Path) -> Dict[str, str]:
    """Environment of the processes run in a built project.

    ``PYTHONPATH`` puts the project's own copy of the aimed package first, so tests may edit
    aimed's code there; bytecode is written as on a user's machine (``__pycache__`` folders
    appear beside the modules that DVC hashes).
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    # Then the PYTHONPATH of the test run, if any: a worktree tested against another checkout's
    # editable install (PYTHONPATH=<worktree>) keeps its own aimed for projects without a copy.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(project), os.environ.get("PYTHONPATH")) if p)
    return env


def run_in(project: pathlib.Path, *cmd: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``cmd`` in ``project`` with ``project_env``; stdout and stderr come back merged in ``.stdout``.

    With ``check`` a non-zero exit fails the test and shows the output.
    """
    proc = subprocess.run(list(cmd), cwd=project, env=project_env(project), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited with {proc.returncode} in {project}:\n{proc.stdout[-20000:]}")
    return proc


def git(project: pathlib.Path, *args: str) -> str:
    """Run ``git ARGS`` in ``project`` (a fixed author) and return its output."""
    return run_in(project, "git", "-c", "user.name=aimed tests", "-c", "user.email=tests@aimed.invalid",
                  *args, timeout=120).stdout


@pytest.fixture(scope="session")
def built_template(tmp_path_factory) -> pathlib.Path:
    """A shrunken project with its own copy of aimed, in git and DVC, after one full Snakemake run.

    Commits: "project" (the sources), then "run 1" (dvc.yaml, dvc.lock after the run). Never
    modified: ``built_project`` copies it.
    """
    with shared_template(tmp_path_factory, "built_template") as (project, missing):
        if missing:
            _build_built_template(project)
    return project


def _build_built_template(project: pathlib.Path) -> None:
    copy_project(project)
    shutil.copytree(REPO_ROOT / "aimed", project / "aimed", ignore=_COPY_IGNORE)
    shutil.copy2(REPO_ROOT / ".gitignore", project / ".gitignore")
    update_yaml(project / "config" / "config.yaml",
                {"datasets": {"mnist": {f"limit_{split}": n for split, n in BUILT_SIZES.items()}}})
    for run_config in sorted((project / "runs").glob("*/config.yaml")):
        update_yaml(run_config, BUILT_OVERRIDES)
    found = run_in(project, sys.executable, "-c", "import aimed; print(aimed.__file__)").stdout.strip()
    assert pathlib.Path(found) == project / "aimed" / "__init__.py", f"aimed is {found}, not the project's copy"
    git(project, "init", "-q")
    run_in(project, "dvc", "init", "-q")
    shutil.copy2(REPO_ROOT / ".dvcignore", project / ".dvcignore")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "project")
    run_in(project, "snakemake", "--cores", "2", "--resources", "gpu=1", "--nocolor", timeout=1200)
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "run 1")


@pytest.fixture(scope="module")
def built_project(built_template, tmp_path_factory) -> pathlib.Path:
    """A copy of ``built_template`` owned by one test module (its git repo, DVC cache and results)."""
    project = tmp_path_factory.mktemp("built") / "project"
    shutil.copytree(built_template, project, symlinks=True)
    return project
