"""Migrating from abstractions: projects of both API generations run after `aimed migrate` changes their imports.

``tests/migration/v01`` is written for abstractions 0.1.x (the tutorial): the DataLoader takes
``(config, data_dir)``, the evaluator returns a dict, there is no ``label_preprocess`` and a weight
preprocessor that casts to float, validation ids repeat, the config has no ``project_name`` but
carries model-card sections. ``tests/migration/v02`` is written for the unreleased v0.2: a
package-style segmentation project importing from ``abstractions.<submodule>``, a DataLoader
built as ``(config)``, ``EvalFunc`` objects returned in a list, per-pixel weights. Each is
copied, migrated by `aimed migrate` (which only rewrites import lines) and run through Snakemake.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from zoo_harness import MIGRATION, BuiltProjects, check_deep_edit_reruns_exactly, check_zoo_project_end_to_end, zoo_runs

pytestmark = pytest.mark.slow

GENERATIONS = ("v01", "v02")


@pytest.fixture(scope="module")
def migrated_projects(tmp_path_factory) -> BuiltProjects:
    return BuiltProjects(MIGRATION, tmp_path_factory.mktemp("migrated"), migrate=True)


#: What `aimed migrate --check` must find in each fixture without changing it.
FINDINGS = {
    "v01": ["MnistLikeLoader.__init__(config, data_dir): the 0.1.x constructor"],
    "v02": ["EchoLoader.__init__(config): the v0.2 constructor",
            "get_eval_funcs returns a list"],
}


@pytest.mark.parametrize("generation", GENERATIONS)
def test_migrate_check_shows_the_diff_and_findings_and_changes_nothing(generation, tmp_path):
    project = shutil.copytree(MIGRATION / generation, tmp_path / generation)
    before = {p: p.read_bytes() for p in project.rglob("*.py")}
    check = subprocess.run(["aimed", "migrate", str(project), "--check"], capture_output=True, text=True, timeout=60)
    assert check.returncode == 1, check.stderr
    assert "-from abstractions" in check.stdout and "+from aimed" in check.stdout
    for finding in FINDINGS[generation]:
        assert finding in check.stdout, check.stdout
    assert {p: p.read_bytes() for p in project.rglob("*.py")} == before

    done = subprocess.run(["aimed", "migrate", str(project)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    changed = {p for p in before if p.read_bytes() != before[p]}
    for path in changed:  # only import lines changed
        old, new = before[path].decode().splitlines(), path.read_text().splitlines()
        assert len(old) == len(new)
        assert all(a == b or ("import" in a and a.replace("abstractions", "aimed") == b) for a, b in zip(old, new))
    assert not any("abstractions" in line and "import" in line
                   for p in project.rglob("*.py") for line in p.read_text().splitlines() if not line.lstrip().startswith("#"))
    again = subprocess.run(["aimed", "migrate", str(project), "--check"], capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "would rewrite 0 import line(s)" in again.stdout


@pytest.mark.parametrize("generation", GENERATIONS)
def test_migrated_project_runs_through_snakemake(migrated_projects, generation):
    check_zoo_project_end_to_end(migrated_projects, generation)
    project = migrated_projects[generation]
    for run in zoo_runs(MIGRATION / generation):
        card = json.loads((project / "results" / run / "export" / "model_card.json").read_text())
        if generation == "v01":
            assert card["model_details"]["name"], "the run config's model-card sections reach the model card"
        validation = json.loads((project / "results" / run / "validate_data" / "report.json").read_text())
        duplicates = validation["splits"]["validation"]["duplicate_ids"]
        assert bool(duplicates) == (generation == "v01")  # a warning, not an error
        assert validation["ok"] and (bool(validation["warnings"]) == (generation == "v01"))


@pytest.mark.parametrize("generation", GENERATIONS)
def test_migrated_project_deep_edit_reruns_exactly_its_stages(migrated_projects, generation):
    check_deep_edit_reruns_exactly(migrated_projects, generation)
