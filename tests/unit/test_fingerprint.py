"""Stage fingerprints: stable under what cannot change a result, sensitive to what can (no training).

Each test works on its own copy of a small project (the real configs and ``src/``, a dataset of
a few images) and compares the fingerprint of every job of a run before and after one edit.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil

import pytest
import yaml
from conftest import copy_project, prepare_dataset, update_yaml

from aimed.config import load_config
from aimed.pipeline import EVAL_SPLITS, STAGES
from aimed.provenance import fingerprint, why, write_fingerprint_files

RUNS = ("mnist-tf", "mnist-gen")

#: Every job of a run: (stage, split).
ALL_JOBS = frozenset((stage, split) for stage in STAGES for split in (EVAL_SPLITS if stage == "evaluate" else (None,)))
FROM_CHECK = ALL_JOBS - {("validate-data", None)}
FROM_TRAIN = frozenset({("train", None), ("export", None), ("evaluate", "validation"), ("evaluate", "test")})
EVALUATES = frozenset({("evaluate", "validation"), ("evaluate", "test")})


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> pathlib.Path:
    """A project copy with a dataset of a few images (never modified)."""
    project = copy_project(tmp_path_factory.mktemp("fingerprint") / "project")
    prepare_dataset(project / "datasets" / "mnist", train=6, validation=4, test=4)
    return project


@pytest.fixture
def project(template, tmp_path) -> pathlib.Path:
    """A fresh copy of ``template`` for one test."""
    dest = tmp_path / "project"
    shutil.copytree(template, dest, symlinks=True)
    return dest


def fingerprints(project: pathlib.Path, run: str = "mnist-tf") -> dict:
    """{(stage, split): fingerprint} of every job of a run."""
    config = load_config(project / "runs" / run / "config.yaml")
    return {job: fingerprint(config, project, *job) for job in ALL_JOBS}


def changed_jobs(before: dict, after: dict) -> frozenset:
    return frozenset(job for job in before if before[job] != after[job])


def append(path: pathlib.Path, text: str) -> None:
    path.write_text(path.read_text() + text)


# ----------------------------------------------------------------------------- what must not matter


def test_key_order_and_yaml_layout_do_not_matter(project):
    before = {run: fingerprints(project, run) for run in RUNS}
    for run in RUNS:
        path = project / "runs" / run / "config.yaml"

        def reverse(value):
            return {k: reverse(v) for k, v in reversed(list(value.items()))} if isinstance(value, dict) else value

        # Reversed key order at every level, flow style, no comments.
        path.write_text(yaml.safe_dump(reverse(yaml.safe_load(path.read_text())), sort_keys=False,
                                       default_flow_style=True))
    assert {run: fingerprints(project, run) for run in RUNS} == before


def test_absolute_project_path_does_not_matter(project, tmp_path):
    other = tmp_path / "elsewhere" / "deeper" / "copy"
    # shutil.copy: new timestamps too.
    shutil.copytree(project, other, copy_function=shutil.copy)
    for run in RUNS:
        assert fingerprints(other, run) == fingerprints(project, run)


def test_timestamps_do_not_matter(project):
    before = {run: fingerprints(project, run) for run in RUNS}
    for folder in ("src", "runs", "datasets"):
        for path in (project / folder).rglob("*"):
            os.utime(path, (1_000_000_000, 1_000_000_000))
    assert {run: fingerprints(project, run) for run in RUNS} == before
    for folder in ("src", "runs", "datasets"):
        for path in (project / folder).rglob("*"):
            path.touch()
    assert {run: fingerprints(project, run) for run in RUNS} == before


def _reindent(text: str) -> str:
    """Halve every line's leading spaces (4-space to 2-space indentation)."""
    lines = []
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        lines.append(" " * ((len(line) - len(stripped)) // 2) + stripped)
    return "\n".join(lines) + "\n"


def test_comments_docstrings_and_whitespace_do_not_matter(project):
    before = {run: fingerprints(project, run) for run in RUNS}
    models = project / "src" / "models.py"
    text = models.read_text()
    text = text.replace("class ModelBuilder(ModelBuilderBase):\n",
                        'class ModelBuilder(ModelBuilderBase):\n    """Builds the dense MNIST classifier."""\n\n')
    text = text.replace("    def get_compiled_model(self):\n",
                        "    def get_compiled_model(self):   \n"
                        "        '''The compiled model.'''\n"
                        "        # a comment\n")
    text = ('"""A new module docstring."""\n# A comment.\n\n\n' + text.replace("\n\n", "\n\n\n")
            + "\n# trailing comment\n\n")
    models.write_text(_reindent(text))
    compile(models.read_text(), str(models), "exec")  # still valid Python
    for name in ("dataset.py", "preprocessing.py", "evaluation.py"):
        append(project / "src" / name, "\n\n# A comment at the end.   \n\n")
    assert {run: fingerprints(project, run) for run in RUNS} == before


# ----------------------------------------------------------------------------- what must matter


@pytest.mark.parametrize(
    "module, expected",
    [
        ("dataset.py", ALL_JOBS),
        ("preprocessing.py", FROM_CHECK),
        ("models.py", FROM_CHECK),  # check-preprocessing builds the model
        ("evaluation.py", EVALUATES),
    ],
)
def test_a_code_change_changes_the_stages_running_it_and_downstream(project, module, expected):
    before = {run: fingerprints(project, run) for run in RUNS}
    append(project / "src" / module, "\n_CHANGED = 1\n")
    for run in RUNS:  # both runs use every module of src/
        assert changed_jobs(before[run], fingerprints(project, run)) == expected, run


def test_a_change_in_an_imported_helper_module_counts(project):
    (project / "src" / "helpers.py").write_text("WIDTH = 1\n")
    models = project / "src" / "models.py"
    models.write_text("from helpers import WIDTH\n" + models.read_text())
    before = fingerprints(project)
    (project / "src" / "helpers.py").write_text("WIDTH = 2\n")
    assert changed_jobs(before, fingerprints(project)) == FROM_CHECK


def test_a_change_in_a_helper_package_counts(project):
    package = project / "src" / "layers"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "widths.py").write_text("WIDTH = 1\n")
    models = project / "src" / "models.py"
    models.write_text("from layers.widths import WIDTH\n" + models.read_text())
    before = fingerprints(project)
    (package / "widths.py").write_text("WIDTH = 2\n")
    assert changed_jobs(before, fingerprints(project)) == FROM_CHECK


def test_an_imported_module_added_to_src_later_counts(project):
    """An import that named no module of src/ (a third-party one, say) counts once src/ has that module."""
    models = project / "src" / "models.py"
    models.write_text("import helpers\n" + models.read_text())
    before = fingerprints(project)
    (project / "src" / "helpers.py").write_text("WIDTH = 1\n")
    assert changed_jobs(before, fingerprints(project)) == FROM_CHECK


#: A package-style ``src/model``: the config names ``model.ModelBuilder``, which ``model/__init__.py``
#: re-exports from ``baseline``. Each entry: the lines put on top of some modules, which reach the
#: edited module by one import form, and the module edited.
IMPORT_FORMS = {
    "from .x import y": ({"model/baseline.py": "from .deep import WIDTH\n"}, "model/deep.py"),
    "from . import x": ({"model/baseline.py": "from . import deep\n"}, "model/deep.py"),
    "from ..pkg import y": ({"model/sub/inner.py": "from ..deep import WIDTH\n",
                             "model/baseline.py": "from .sub.inner import WIDTH\n"}, "model/deep.py"),
    "from .. import x": ({"model/sub/inner.py": "from .. import deep\n",
                          "model/baseline.py": "from .sub import inner\n"}, "model/deep.py"),
    "from ...pkg import y": ({"model/sub/inner.py": "from ...common.deep import WIDTH\n",
                              "model/baseline.py": "from .sub import inner\n"}, "common/deep.py"),
    "import pkg.sub": ({"model/baseline.py": "import common.deep\n"}, "common/deep.py"),
    "from pkg import submodule": ({"model/baseline.py": "from common import deep\n"}, "common/deep.py"),
    "a package's __init__ runs on import of its submodule": (
        {"model/baseline.py": "import common.deep\n"}, "common/__init__.py"),
    "importlib.import_module literal": (
        {"model/baseline.py": "import importlib\n_deep = importlib.import_module('common.deep')\n"},
        "common/deep.py"),
    "relative import_module inside a function": (
        {"model/baseline.py": "from importlib import import_module\n\n\n"
                              "def load():\n    return import_module('.deep', __package__)\n"}, "model/deep.py"),
}


@pytest.mark.parametrize("form", sorted(IMPORT_FORMS))
def test_every_import_form_reaching_a_deep_module_counts(project, form):
    """The class path names a package that re-exports; an edit imports away must change the fingerprint."""
    src = project / "src"
    for package in ("model", "model/sub", "common"):
        (src / package).mkdir(parents=True, exist_ok=True)
        (src / package / "__init__.py").write_text("")
    (src / "model" / "__init__.py").write_text("from .baseline import ModelBuilder\n")
    (src / "model" / "baseline.py").write_text((src / "models.py").read_text())
    for name in ("model/deep.py", "common/deep.py"):
        (src / name).write_text("WIDTH = 1\n")
    headers, edited = IMPORT_FORMS[form]
    for name, header in headers.items():
        path = src / name
        path.write_text(header + (path.read_text() if path.is_file() else ""))
    update_yaml(project / "runs" / "mnist-tf" / "config.yaml", {"model_builder_class": "model.ModelBuilder"})
    before = fingerprints(project)
    append(src / edited, "\nWIDTH = 2\n")
    assert changed_jobs(before, fingerprints(project)) == FROM_CHECK, f"editing {edited} went unnoticed"


def test_an_unreached_module_does_not_count(project):
    before = fingerprints(project)
    (project / "src" / "unused.py").write_text("import models\n")
    assert changed_jobs(before, fingerprints(project)) == frozenset()


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({"data_loader": {"shuffle": False}}, ALL_JOBS),
        ({"preprocessor": {"normalize_by": 128}}, FROM_CHECK),
        ({"batch_size": 8}, FROM_CHECK),
        ({"model_builder": {"n_filters": 64}}, FROM_CHECK),
        ({"epochs": 3}, FROM_TRAIN),
        ({"export": {"metric": "val_sparse_categorical_accuracy", "mode": "max"}}, FROM_TRAIN),
        ({"evaluation": {"thresholds": {"accuracy": {"min": 0.5}}}}, {("evaluate", "validation")}),
        ({"mlflow": {"enabled": False}}, set()),
        ({"training": {"verbose": 0}}, set()),
        ({"project_name": "renamed"}, set()),
    ],
    ids=lambda value: json.dumps(value) if isinstance(value, dict) else None,
)
def test_a_config_value_changes_exactly_the_stages_reading_it(project, overrides, expected):
    before = {run: fingerprints(project, run) for run in RUNS}
    update_yaml(project / "runs" / "mnist-tf" / "config.yaml", overrides)
    assert changed_jobs(before["mnist-tf"], fingerprints(project, "mnist-tf")) == frozenset(expected)
    assert fingerprints(project, "mnist-gen") == before["mnist-gen"], "the other run's config did not change"


def test_a_changed_image_changes_every_stage(project):
    from PIL import Image

    before = {run: fingerprints(project, run) for run in RUNS}
    image_path = project / "datasets" / "mnist" / "train" / "image_0.jpg"
    image = Image.open(image_path).convert("L")
    image.putpixel((0, 0), 255 - image.getpixel((0, 0)))
    image.save(image_path)
    for run in RUNS:
        assert changed_jobs(before[run], fingerprints(project, run)) == ALL_JOBS, run


def test_an_added_image_changes_every_stage(project):
    before = fingerprints(project)
    shutil.copy(project / "datasets" / "mnist" / "test" / "image_0.jpg",
                project / "datasets" / "mnist" / "test" / "extra.jpg")
    assert changed_jobs(before, fingerprints(project)) == ALL_JOBS


def test_a_fingerprint_lists_the_dataset_once(project, monkeypatch):
    """evaluate's fingerprint covers four upstream stages that read the data; the dataset is listed once."""
    import aimed.provenance

    listed = []
    real = aimed.provenance.folder_manifest
    monkeypatch.setattr(aimed.provenance, "folder_manifest", lambda *a, **k: listed.append(a[0]) or real(*a, **k))
    config = load_config(project / "runs" / "mnist-tf" / "config.yaml")
    fingerprint(config, project, "evaluate", "test")
    assert listed == [(project / "datasets" / "mnist").resolve()]


# ----------------------------------------------------------------------------- explanations and files


def test_why_names_the_changed_part(project):
    config = load_config(project / "runs" / "mnist-tf" / "config.yaml")
    folder = project / "results" / "mnist-tf" / "train"
    assert why(config, project, "train", folder) == [
        "no recorded fingerprint: the stage has not run (or its outputs were removed)"]
    from aimed.provenance import record

    folder.mkdir(parents=True)
    record(config, project, "train", folder)
    assert why(config, project, "train", folder) == []
    append(project / "src" / "models.py", "\n_CHANGED = 1\n")
    # check-preprocessing builds the model too, so the upstream fingerprint changes with it.
    assert why(config, project, "train", folder) == ["code.models.py: changed",
                                                     "upstream.check-preprocessing: changed"]
    update_yaml(project / "runs" / "mnist-tf" / "config.yaml", {"model_builder": {"n_filters": 64}})
    config = load_config(project / "runs" / "mnist-tf" / "config.yaml")
    assert why(config, project, "train", folder) == ["code.models.py: changed", "config.model_builder: changed",
                                                     "upstream.check-preprocessing: changed"]


def test_fingerprint_files_are_rewritten_only_when_their_value_changes(project):
    config = load_config(project / "runs" / "mnist-tf" / "config.yaml")
    written = write_fingerprint_files(config, project, "mnist-tf")
    assert len(written) == len(ALL_JOBS)
    assert write_fingerprint_files(config, project, "mnist-tf") == []
    append(project / "src" / "evaluation.py", "\n_CHANGED = 1\n")
    assert sorted(p.name for p in write_fingerprint_files(config, project, "mnist-tf")) == [
        "evaluate_test.json", "evaluate_validation.json"]
    append(project / "src" / "evaluation.py", "# only a comment\n")
    assert write_fingerprint_files(config, project, "mnist-tf") == []
