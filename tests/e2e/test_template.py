"""The cookiecutter template: what it generates, and that the generated project works on its own.

Two bakes: the defaults (``--no-input``) and other answers (an RGB 32x32 input, 5 classes, another
run name). The generated project imports the workflow of the installed aimed (this environment's)
as a Snakemake module, so its tests and its pipeline run against it without a copy of workflow/.
"""

from __future__ import annotations

import filecmp
import json
import pathlib
import shutil
import subprocess
import sys

import pandas as pd
import pytest
import tomllib
import yaml
from conftest import REPO_ROOT

from aimed.config import load_config, load_workflow_config
from aimed.runners import dvc
from aimed.workflow_files import snakefile

TEMPLATE = REPO_ROOT / "template"

#: Answers of each bake beyond the defaults of template/cookiecutter.json.
VARIANTS: dict[str, dict[str, object]] = {
    "defaults": {},
    "rgb": {"project_name": "Retina Scan", "run_name": "rgb-small", "input_height": 32, "input_width": 32,
            "channels": 3, "n_classes": 5},
}

#: What each bake must generate: the project folder (slug), and what its configs must carry.
EXPECTED = {
    "defaults": {"slug": "image-classifier", "run": "baseline", "height": 28, "width": 28, "channels": 1,
                 "classes": 10},
    "rgb": {"slug": "retina-scan", "run": "rgb-small", "height": 32, "width": 32, "channels": 3, "classes": 5},
}

#: Every file of a generated project, relative to it; {run} is the first run's name.
EXPECTED_TREE = [
    ".gitignore",
    "Makefile",
    "README.md",
    "Snakefile",
    "config/config.yaml",
    "dvc.yaml",
    "envs/cpu.yaml",
    "envs/gpu.yaml",
    "profiles/default/config.yaml",
    "profiles/slurm/config.yaml",
    "runs/{run}/config.yaml",
    "scripts/make_sample_data.py",
    "src/dataset.py",
    "src/evaluation.py",
    "src/models.py",
    "src/preprocessing.py",
    "tests/test_project.py",
]

#: Template syntax that must not survive rendering. Snakemake's wildcards are single braces
#: ({run}), and no generated file needs Jinja-like double braces or block tags.
TEMPLATE_SYNTAX = ("{{", "}}", "{%", "%}", "{#", "#}")

#: Images per split and epochs of the end-to-end run: seconds per stage.
TINY = {"train": 48, "validation": 20, "test": 15, "epochs": 1}


def bake(variant: str, out_dir: pathlib.Path) -> pathlib.Path:
    """Generate a project from the repository's template with a variant's answers; return its folder."""
    # Cookiecutter's replay files go to this test's folder, not to the home directory.
    user_config = out_dir / "cookiecutter.yaml"
    user_config.write_text(yaml.safe_dump({"cookiecutters_dir": str(out_dir / "cookiecutters"),
                                           "replay_dir": str(out_dir / "replay")}))
    answers = [f"{key}={value}" for key, value in VARIANTS[variant].items()]
    result = subprocess.run([sys.executable, "-m", "cookiecutter", "--no-input", "--config-file", str(user_config),
                             "--output-dir", str(out_dir), str(REPO_ROOT), "--directory", "template", *answers],
                            check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-5000:]
    return out_dir / EXPECTED[variant]["slug"]


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def baked(request, tmp_path_factory) -> pathlib.Path:
    """A freshly generated project, once per variant (the tests of a variant only read it)."""
    return bake(request.param, tmp_path_factory.mktemp(f"bake_{request.param}"))


def variant_of(project: pathlib.Path) -> dict[str, object]:
    """The expected answers of a baked project, found by its folder name."""
    return next(e for e in EXPECTED.values() if e["slug"] == project.name)


def files_of(project: pathlib.Path) -> list[str]:
    """Every file below ``project``, relative and sorted."""
    return sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file())


def test_bake_writes_exactly_the_expected_files(baked):
    assert files_of(baked) == sorted(p.format(run=variant_of(baked)["run"]) for p in EXPECTED_TREE)


def test_no_template_syntax_is_left(baked):
    leftovers = {path: token for path in files_of(baked) for token in TEMPLATE_SYNTAX
                 if token in (baked / path).read_text()}
    assert not leftovers


def test_the_answers_reach_the_configs(baked):
    expected = variant_of(baked)
    workflow_config = load_workflow_config(baked)
    assert workflow_config["runs"] == [expected["run"]]
    assert workflow_config["datasets"]["mnist"]["script"] == "scripts/make_sample_data.py"
    config = load_config(baked / "runs" / expected["run"] / "config.yaml")
    assert config.project_name == expected["slug"]
    assert (config.input_height, config.input_width) == (expected["height"], expected["width"])
    assert config.data_loader.channels == expected["channels"]
    assert config.model_builder.n_classes == expected["classes"]
    assert workflow_config["datasets"]["mnist"]["path"] == config.data_dir


def test_dvc_yaml_is_aimeds_rendering_of_the_generated_configs(baked):
    assert (baked / "dvc.yaml").read_text() == dvc.render(load_workflow_config(baked), baked)


def test_the_snakefile_imports_the_installed_workflow_rather_than_copying_it(baked):
    generated = baked / "Snakefile"
    assert filecmp.cmp(generated, TEMPLATE / "{{cookiecutter.project_slug}}" / "Snakefile", shallow=False)
    text = generated.read_text()
    assert "snakefile:\n        aimed.workflow_files.snakefile()" in text
    assert "include:" not in text
    assert not (baked / "workflow").exists()


def test_the_package_ships_the_repositorys_workflow():
    shipped = snakefile()
    assert shipped.read_text() == (REPO_ROOT / "Snakefile").read_text()
    repo_files = sorted(p.relative_to(REPO_ROOT / "workflow") for p in (REPO_ROOT / "workflow").rglob("*")
                        if p.is_file() and "__pycache__" not in p.parts)
    for relative in repo_files:
        assert (shipped.parent / "workflow" / relative).read_bytes() == (REPO_ROOT / "workflow" / relative).read_bytes()


@pytest.mark.parametrize("extra", ["cpu", "gpu"])
def test_the_conda_envs_pin_aimeds_dependencies(baked, extra):
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((baked / "envs" / f"{extra}.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert set(project["dependencies"]) | set(project["optional-dependencies"][extra]) <= set(pip)


@pytest.mark.slow
def test_the_generated_projects_own_tests_pass(baked, tmp_path):
    project = shutil.copytree(baked, tmp_path / baked.name)  # the other tests read the bake as generated
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=project,
                            check=False, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    assert "passed" in result.stdout


def shrink(project: pathlib.Path, run: str) -> None:
    """Few images, one epoch and no quality gate: the pipeline in seconds per stage."""
    workflow_config_path = project / "config" / "config.yaml"
    workflow_config = yaml.safe_load(workflow_config_path.read_text())
    limits = {f"limit_{split}": TINY[split] for split in ("train", "validation", "test")}
    workflow_config["datasets"]["mnist"].update(limits)
    workflow_config_path.write_text(yaml.safe_dump(workflow_config, sort_keys=False))
    run_config_path = project / "runs" / run / "config.yaml"
    run_config = yaml.safe_load(run_config_path.read_text())
    run_config["epochs"] = TINY["epochs"]
    run_config["evaluation"]["thresholds"] = {}
    run_config_path.write_text(yaml.safe_dump(run_config, sort_keys=False))


@pytest.mark.slow
def test_the_generated_pipeline_trains_exports_and_evaluates(tmp_path):
    project = bake("rgb", tmp_path)
    expected = EXPECTED["rgb"]
    run = expected["run"]
    shrink(project, run)
    snakemake = [sys.executable, "-m", "snakemake", "--cores", "2", "--resources", "gpu=1"]
    result = subprocess.run(snakemake, cwd=project, capture_output=True, text=True, check=False, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-8000:]

    results = project / "results" / run
    history = pd.read_csv(results / "train" / "history.csv")
    assert len(history) == TINY["epochs"]
    for path in ("train/best_model.keras", "export/model.keras", "export/savedmodel/saved_model.pb",
                 "export/model_card.json", "check_preprocessing/samples.png"):
        assert (results / path).is_file(), path
    for split in ("validation", "test"):
        evaluated = results / "evaluate" / split
        summary = json.loads((evaluated / "summary.json").read_text())
        assert summary["n"] == TINY[split]
        report = pd.read_csv(evaluated / "report.csv")
        labels = pd.read_csv(project / "datasets" / "sample" / split / "labels.csv")
        assert report["data_id"].tolist() == labels["image name"].tolist()
        assert report["y_true"].tolist() == labels["label"].tolist()
        assert report["pred_class"].between(0, expected["classes"] - 1).all()
        assert {"cross_entropy", "correct"} <= set(report.columns)
    # The quality gate judges the validation split; without thresholds the model passes it.
    assert json.loads((results / "evaluate" / "validation" / "summary.json").read_text())["blessed"] is True

    # The module's rules record what they built like aimed's own Snakefile: a second run has nothing to do.
    again = subprocess.run([*snakemake, "--dry-run"], cwd=project, check=False, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-5000:]
    assert "Nothing to be done" in again.stdout + again.stderr
