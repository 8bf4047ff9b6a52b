"""The conda environments pin what pyproject.toml pins (a static check: conda is not installable here)."""

from __future__ import annotations

import pathlib

import pytest
import tomllib
import yaml
from conftest import REPO_ROOT
from packaging.requirements import Requirement

ENVS = sorted((REPO_ROOT / "envs").glob("*.yaml"))


def _pyproject_requirements() -> dict:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in ("cpu", "gpu", "example"):
        specs += project["optional-dependencies"][extra]
    requirements = {}
    for spec in specs:
        requirement = Requirement(spec)
        requirements.setdefault(requirement.name, set()).add((frozenset(requirement.extras), str(requirement.specifier)))
    return requirements


def _pip_requirements(env_file: pathlib.Path) -> list:
    env = yaml.safe_load(env_file.read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return [Requirement(spec) for spec in pip]


def test_there_is_a_cpu_and_a_gpu_environment():
    assert {p.stem for p in ENVS} >= {"cpu", "gpu"}


@pytest.mark.parametrize("env_file", ENVS, ids=lambda p: p.name)
def test_every_pip_pin_equals_the_pyproject_pin(env_file):
    pinned = _pyproject_requirements()
    for requirement in _pip_requirements(env_file):
        assert requirement.name in pinned, f"{env_file.name}: {requirement.name} is not a dependency in pyproject.toml"
        assert (frozenset(requirement.extras), str(requirement.specifier)) in pinned[requirement.name], (
            f"{env_file.name}: {requirement} does not match pyproject.toml's {sorted(pinned[requirement.name])}"
        )


@pytest.mark.parametrize("env_file", ENVS, ids=lambda p: p.name)
def test_every_core_dependency_is_in_the_environment(env_file):
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    names = {r.name for r in _pip_requirements(env_file)}
    missing = {Requirement(s).name for s in project["dependencies"]} - names
    assert not missing, f"{env_file.name} lacks {sorted(missing)}"


def test_tensorflow_flavour_matches_the_environment():
    """Never tensorflow and tensorflow-cpu together: they overwrite each other."""
    for env_file in ENVS:
        names = {r.name for r in _pip_requirements(env_file)}
        assert not {"tensorflow", "tensorflow-cpu"} <= names
        assert ("tensorflow-cpu" in names) == (env_file.stem == "cpu")
