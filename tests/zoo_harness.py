"""The user-code zoo (tests/zoo/): each project run end to end through Snakemake, then edited deep down.

Each project becomes a real workflow project in a temporary folder: aimed's Snakefile and rules,
a ``config/config.yaml`` listing its runs, whose ``prepare_data`` step runs the project's own
``make_data.py``, and the project's ``src/`` and ``runs/``, in git and DVC. One ``snakemake`` run
builds everything; the tests then check every run's artifacts against the project's own data and
edit the module named in its ``zoo.yaml`` to see exactly the stages that run its code rerun, under
Snakemake and under DVC.

The test modules ``test_zoo_*.py`` each name some of the projects in ``PROJECTS`` (``make test``
hands whole files to its two workers) and import the tests from here; conftest's
``pytest_generate_tests`` gives each test the module's projects as ``zoo_name``.
"""

from __future__ import annotations

import collections
import json
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time
from typing import Any, Counter, Dict, List

import pytest
import yaml
from conftest import REPO_ROOT, git, project_env, run_in, update_yaml
from plans import Job, assert_plans, edited, jobs

from aimed.pipeline import EVAL_SPLITS, STAGES

ZOO = REPO_ROOT / "tests" / "zoo"
#: Projects written for the two generations of abstractions, run after `aimed migrate` (same layout).
MIGRATION = REPO_ROOT / "tests" / "migration"

#: Writes the project's dataset at rule prepare_data: the template's `--out` calling convention
#: around the zoo's `python make_data.py OUT_DIR`.
PREPARE_SCRIPT = '''"""prepare_data of a zoo project: make_data.py writes the dataset to --out."""
import argparse
import pathlib
import subprocess
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--out", required=True)
args = parser.parse_args()
script = pathlib.Path(__file__).resolve().parents[1] / "make_data.py"
sys.exit(subprocess.call([sys.executable, str(script), args.out]))
'''


def zoo_runs(source: pathlib.Path) -> List[str]:
    return sorted(p.parent.name for p in (source / "runs").glob("*/config.yaml"))


def zoo_spec(source: pathlib.Path) -> Dict[str, str]:
    return yaml.safe_load((source / "zoo.yaml").read_text())


def build_zoo_project(source: pathlib.Path, dest: pathlib.Path, migrate: bool = False) -> pathlib.Path:
    """The project in ``source`` as a workflow project in ``dest``, built by one Snakemake run.

    ``migrate``: run ``aimed migrate`` on it first, as a user moving from abstractions would.
    """
    dest.mkdir(parents=True)
    for item in ("Snakefile", "workflow", "profiles"):
        workflow_item = REPO_ROOT / item
        (shutil.copytree if workflow_item.is_dir() else shutil.copy2)(workflow_item, dest / item)
    shutil.copytree(REPO_ROOT / "config", dest / "config")
    for item in ("src", "runs", "make_data.py"):
        (shutil.copytree(source / item, dest / item, ignore=shutil.ignore_patterns("__pycache__"))
         if (source / item).is_dir() else shutil.copy2(source / item, dest / item))
    (dest / "scripts").mkdir()
    (dest / "scripts" / "prepare.py").write_text(PREPARE_SCRIPT)
    data_dirs = {yaml.safe_load((dest / "runs" / run / "config.yaml").read_text())["data_dir"] for run in zoo_runs(source)}
    assert len(data_dirs) == 1, f"{source}: its runs must share one data_dir, not {data_dirs}"
    update_yaml(dest / "config" / "config.yaml", {
        "runs": zoo_runs(source), "train_threads": 1,
        "datasets": {"mnist": {"script": "scripts/prepare.py", "sample": None, "path": data_dirs.pop()}}})
    shutil.copy2(REPO_ROOT / ".gitignore", dest / ".gitignore")
    shutil.copy2(REPO_ROOT / ".dvcignore", dest / ".dvcignore")
    if migrate:
        run_in(dest, "aimed", "migrate", ".")
    git(dest, "init", "-q")
    run_in(dest, "dvc", "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "project")
    run_in(dest, "snakemake", "--cores", "2", "--resources", "gpu=1", "--nocolor", timeout=900)
    return dest


class BuiltProjects(dict):
    """``{name: built project}`` of the projects under ``sources``, each built on first use."""

    def __init__(self, sources: pathlib.Path, dest: pathlib.Path, migrate: bool = False) -> None:
        super().__init__()
        self.sources, self.dest, self.migrate = sources, dest, migrate

    def __missing__(self, name: str) -> pathlib.Path:
        self[name] = build_zoo_project(self.sources / name, self.dest / name, self.migrate)
        return self[name]


@pytest.fixture(scope="module")
def zoo_projects(tmp_path_factory) -> BuiltProjects:
    """Zoo projects built on first use, once per module."""
    return BuiltProjects(ZOO, tmp_path_factory.mktemp("zoo"))


def _split_ids(project: pathlib.Path, run: str, split: str) -> List[str]:
    """The ids of a split as the run's own DataLoader gives them, in order, as report text."""
    from aimed.data import id_text, split_source, take
    from aimed.run import resolve_run

    ctx = resolve_run(run, project)
    loader = ctx.data_loader()
    source, n = split_source(loader, split)
    if split == "test":
        return [id_text(point[2]) for point in take(source, n)]
    index = loader.get_validation_index()
    return [id_text(i) for i in index] if index is not None else [str(i) for i in range(n)]


def _report(project: pathlib.Path, run: str, split: str) -> Any:
    import pandas as pd

    folder = project / "results" / run / "evaluate" / split
    if (folder / "report.parquet").is_file():
        return pd.read_parquet(folder / "report.parquet")
    return pd.read_csv(folder / "report.csv", dtype={"data_id": str}, keep_default_na=False)


def check_zoo_project_end_to_end(zoo_projects: BuiltProjects, zoo_name: str) -> None:
    """Every run is trained, exported and evaluated; each report's ids are its split's ids, in order."""
    project = zoo_projects[zoo_name]
    for run in zoo_runs(zoo_projects.sources / zoo_name):
        results = project / "results" / run
        for split in EVAL_SPLITS:
            report = _report(project, run, split)
            assert list(report["data_id"]) == _split_ids(project, run, split), f"{run} {split}: ids"
            assert list(map(int, report["row"])) == list(range(len(report)))  # apart even where ids repeat
            summary = json.loads((results / "evaluate" / split / "summary.json").read_text())
            assert summary["n"] == len(report)
            for name, stats in summary["metrics"].items():
                assert stats["n_nan"] < len(report), f"{run} {split}: eval function {name} is all NaN"
        card = json.loads((results / "export" / "model_card.json").read_text())
        assert card["best_epoch"] >= 1
        _serves_then_reloads_as_the_card_says(results / "export", card, project / "src")


def _serves_then_reloads_as_the_card_says(export: pathlib.Path, card: Dict[str, Any], src: pathlib.Path) -> None:
    """The SavedModel answers its serving signature, as the model card describes it (every input it
    names, every output of the shape it gives), in a process without the user's code; then, with
    src/ on the path, ``model.keras`` reloads with the card's ``reload`` objects (each from its
    module) and predicts what the SavedModel served."""
    signature = card["signature"]

    def batch_of_two(shape: List[Any]) -> List[int]:
        return [2 if d is None else d for d in shape]

    inputs = {name: (batch_of_two(spec["shape"]), spec["dtype"]) for name, spec in signature["inputs"].items()}
    outputs = {name: [2] + spec["shape"][1:] for name, spec in signature["outputs"].items()}
    code = (
        "import importlib, sys, numpy as np, tensorflow as tf\n"
        f"model = tf.saved_model.load({str(export / 'savedmodel')!r})\n"
        "serve = model.signatures['serving_default']\n"
        "rng = np.random.default_rng(0)\n"
        f"x = {{name: rng.random(shape).astype(dtype) for name, (shape, dtype) in {inputs!r}.items()}}\n"
        "out = {name: v.numpy() for name, v in serve(**x).items()}\n"
        f"want = {outputs!r}\n"
        "got = {name: list(v.shape) for name, v in out.items()}\n"
        "assert sorted(got) == sorted(want), (got, want)\n"
        "fits = lambda w, g: len(w) == len(g) and all(d is None or d == e for d, e in zip(w, g))\n"
        "assert all(fits(w, got[k]) for k, w in want.items()), (got, want)\n"
        "assert not [m for m in sys.modules if m == 'aimed' or m.startswith('aimed.')], 'serving imported aimed'\n"
        f"sys.path.insert(0, {str(src)!r})\n"
        "import keras\n"
        f"reload = {card['reload']!r}\n"
        "objects = {n: getattr(importlib.import_module(m), n) for n, m in reload['custom_objects'].items()}\n"
        f"reloaded = keras.models.load_model({str(export / 'model.keras')!r}, custom_objects=objects,\n"
        "                                   safe_mode=reload['safe_mode'])\n"
        "args = next(iter(x.values())) if len(x) == 1 else x\n"
        "pred = reloaded(args, training=False)\n"
        "pred = pred if isinstance(pred, dict) else {f'output_{i}': p for i, p in enumerate(tf.nest.flatten(pred))}\n"
        "for name, served in out.items():\n"
        "    np.testing.assert_allclose(np.asarray(pred[name]), served, rtol=1e-4, atol=1e-5, err_msg=name)\n"
    )
    proc = subprocess.run([sys.executable, "-I", "-c", code], cwd=src.parent.parent, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]


def stages_running(component_key: str) -> List[str]:
    """The stages that run the code of a component, and every stage downstream of one of them."""
    rerun: List[str] = []
    for name, stage in STAGES.items():  # STAGES is in pipeline order
        if component_key in stage.components or any(up in rerun for up in stage.upstream):
            rerun.append(name)
    return rerun


def check_deep_edit_reruns_exactly(zoo_projects: BuiltProjects, zoo_name: str) -> None:
    """An edit two imports away from any class path reruns exactly the stages running that code."""
    project = zoo_projects[zoo_name]
    spec = zoo_spec(zoo_projects.sources / zoo_name)
    expected: Counter[Job] = collections.Counter()
    for run in zoo_runs(zoo_projects.sources / zoo_name):
        config = yaml.safe_load((project / "runs" / run / "config.yaml").read_text())
        if config.get(spec["reached_from"]):
            expected += jobs([run], *stages_running(spec["reached_from"]))
    assert expected, f"{zoo_name}: no run uses {spec['reached_from']}"
    assert_plans(project, collections.Counter())  # the build left nothing to do
    with edited(project, spec["deep_module"]):
        path = project / spec["deep_module"]
        path.write_text(path.read_text() + "\n\n_ZOO_EDIT = 1\n")
        assert_plans(project, expected)


def check_sigterm_mid_epoch_resumes_bitwise(zoo_projects: BuiltProjects, zoo_name: str, tmp_path: pathlib.Path) -> None:
    """Each run trained again from scratch, SIGTERMed after its first mid-epoch commit, resumed: the final
    weights equal those of the uninterrupted training the build made, and the resume starts at the
    batch after the commit. Commits every batch (``checkpoint_every: 1``), which must not change results."""
    import numpy as np

    built = zoo_projects[zoo_name]
    project = tmp_path / zoo_name
    shutil.copytree(built, project, symlinks=True, ignore=shutil.ignore_patterns("state", ".snakemake"))
    for run in zoo_runs(zoo_projects.sources / zoo_name):
        update_yaml(project / "runs" / run / "config.yaml", {"training": {"checkpoint_every": 1}})
        state = project / "state" / run / "train" / "state.json"
        log = project / f"{run}.log"
        with log.open("w") as out:
            proc = subprocess.Popen(["aimed", "train", run], cwd=project, env=project_env(project), stdout=out,
                                    stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while True:
            try:
                committed = json.loads(state.read_text())
            except (OSError, ValueError):
                committed = {}
            if committed.get("batch", 0) > 0:
                break
            assert proc.poll() is None, f"{run}: training ended before a mid-epoch commit:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"{run}: no mid-epoch commit in 300 s"
            time.sleep(0.005)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 128 + signal.SIGTERM, log.read_text()[-3000:]
        stopped = json.loads(state.read_text())
        resumed = run_in(project, "aimed", "train", run, timeout=600)
        said = re.search(r"resuming run '[^']+' at epoch (\d+) of \d+, batch (\d+)", resumed.stdout)
        assert said and (int(said[1]), int(said[2])) == (stopped["epoch"] + 1, stopped["batch"] + 1), (
            stopped["epoch"], stopped["batch"], resumed.stdout[-3000:])
        final = json.loads(state.read_text())["weights"]
        with np.load(state.parent / final) as got, np.load(built / "state" / run / "train" / final) as want:
            different = [k for k in want.files if not np.array_equal(got[k], want[k])]
        assert not different, f"{zoo_name}/{run}: arrays {different} of {final} differ from the uninterrupted training"


def test_zoo_project_runs_end_to_end(zoo_projects, zoo_name):
    check_zoo_project_end_to_end(zoo_projects, zoo_name)


def test_zoo_deep_edit_reruns_exactly_its_stages(zoo_projects, zoo_name):
    check_deep_edit_reruns_exactly(zoo_projects, zoo_name)


def test_zoo_sigterm_mid_epoch_resumes_bitwise(zoo_projects, preempted_zoo_name, tmp_path):
    check_sigterm_mid_epoch_resumes_bitwise(zoo_projects, preempted_zoo_name, tmp_path)
