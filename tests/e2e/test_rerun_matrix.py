"""Only what changed reruns: the rerun matrix, under Snakemake and under DVC.

One project is built once (``built_template``: a tiny dataset, 2 epochs, its own copy of aimed,
in git and DVC). Each test makes one edit and checks that ``snakemake --dry-run`` and
``dvc repro --dry`` plan exactly the expected jobs, as multisets of (rule, run, split); then it
undoes the edit. The ``fingerprint`` DVC stage (``aimed fingerprint``, no TensorFlow) is
bookkeeping: it is left out of the comparison, and for a dry run it is run beforehand (a dry run
cannot run it, and the real stages depend on the files it writes). Raising ``epochs`` for real,
to see training continue from its checkpoint, is part of ``test_dvc``'s versioning test.
"""

from __future__ import annotations

import collections
import pathlib
import shutil
import sys
import time

import pytest
from conftest import run_in, update_yaml
from plans import (
    FROM_CHECK,
    FROM_TRAIN,
    FROM_VALIDATE,
    append,
    assert_plans,
    dvc_changed,
    dvc_is_clean,
    dvc_jobs,
    dvc_plan,
    edited,
    jobs,
    snakemake_plan,
    why,
)

from aimed.runners.dvc import FINGERPRINT_STAGE

pytestmark = pytest.mark.slow

RUNS = ("mnist-tf", "mnist-gen")


@pytest.fixture(scope="module")
def project(built_project) -> pathlib.Path:
    return built_project


# ----------------------------------------------------------------------------- the matrix


def _best_of(n: int, project: pathlib.Path, *cmd: str) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        run_in(project, *cmd, timeout=120)
        times.append(time.perf_counter() - start)
    return min(times)


def test_nothing_changed_plans_nothing_and_a_noop_run_is_fast(project, tmp_path):
    assert snakemake_plan(project) == collections.Counter()
    assert dvc_is_clean(project)
    assert dvc_plan(project) == collections.Counter()

    trivial = tmp_path / "trivial"
    trivial.mkdir()
    (trivial / "Snakefile").write_text('rule a:\n    output: "x"\n    shell: "touch {output}"\n')
    (trivial / "x").touch()
    version = _best_of(2, trivial, "snakemake", "--version")
    trivial_noop = _best_of(2, trivial, "snakemake", "--cores", "1")
    noop = _best_of(2, project, "snakemake", "--cores", "1")
    dvc_status = _best_of(1, project, "dvc", "status")
    dvc_repro = _best_of(1, project, "dvc", "repro")
    print(f"\nsnakemake --version {version:.2f} s; trivial Snakefile no-op {trivial_noop:.2f} s; "
          f"pipeline no-op {noop:.2f} s (+{noop - version:.2f} s over --version, "
          f"+{noop - trivial_noop:.2f} s over the trivial Snakefile); "
          f"dvc status {dvc_status:.2f} s; dvc repro (no-op) {dvc_repro:.2f} s")
    assert noop - version < 3.0
    assert dvc_is_clean(project)


def test_comment_and_whitespace_edits_rerun_nothing(project):
    with edited(project, "src/models.py", "src/dataset.py"):
        append(project / "src" / "models.py", "\n\n# A comment.   \n\n")
        path = project / "src" / "dataset.py"
        path.write_text("# A comment at the top.\n\n" + path.read_text().replace("\n\n", "\n\n\n"))
        assert snakemake_plan(project) == collections.Counter()
        assert "up to date" in why(project, "mnist-tf", "validate-data")
        # A real DVC run: only the bookkeeping stage runs, and its unchanged files rerun nothing.
        ran, bookkeeping = dvc_jobs(project, run_in(project, "dvc", "repro", timeout=300).stdout)
        assert ran == collections.Counter()
        assert bookkeeping == {FINGERPRINT_STAGE}
        assert dvc_is_clean(project)
    ran, bookkeeping = dvc_jobs(project, run_in(project, "dvc", "repro", timeout=300).stdout)
    assert ran == collections.Counter() and bookkeeping <= {FINGERPRINT_STAGE}
    assert dvc_is_clean(project)


def test_evaluator_code_reruns_the_evaluations(project):
    with edited(project, "src/evaluation.py"):
        append(project / "src" / "evaluation.py", "\n_CHANGED = 1\n")
        assert_plans(project, jobs(RUNS, "evaluate"))


def test_thresholds_rerun_the_validation_evaluation_only(project):
    with edited(project, "runs/mnist-tf/config.yaml"):
        update_yaml(project / "runs" / "mnist-tf" / "config.yaml",
                    {"evaluation": {"thresholds": {"sparse_categorical_accuracy": {"min": 0.0}}}})
        assert_plans(project, jobs(["mnist-tf"], "evaluate:validation"))
        assert "config.evaluation.thresholds: changed" in why(project, "mnist-tf", "evaluate", "validation")
        assert "up to date" in why(project, "mnist-tf", "evaluate", "test")


# check-preprocessing builds the model to check the batches against it, so it reruns with the model.
def test_model_builder_section_reruns_check_preprocessing_on(project):
    with edited(project, "runs/mnist-tf/config.yaml"):
        update_yaml(project / "runs" / "mnist-tf" / "config.yaml", {"model_builder": {"n_filters": 16}})
        assert_plans(project, jobs(["mnist-tf"], *FROM_CHECK))


def test_model_code_reruns_check_preprocessing_on_for_both_runs(project):
    with edited(project, "src/models.py"):
        append(project / "src" / "models.py", "\n_CHANGED = 1\n")
        assert_plans(project, jobs(RUNS, *FROM_CHECK))
        assert "code.models.py: changed" in why(project, "mnist-tf", "train")


def test_normalize_by_reruns_check_preprocessing_on(project):
    with edited(project, "runs/mnist-tf/config.yaml"):
        update_yaml(project / "runs" / "mnist-tf" / "config.yaml", {"preprocessor": {"normalize_by": 127.5}})
        assert_plans(project, jobs(["mnist-tf"], *FROM_CHECK))


def test_data_loader_code_reruns_everything_from_validate_data(project):
    with edited(project, "src/dataset.py"):
        append(project / "src" / "dataset.py", "\n_CHANGED = 1\n")
        assert_plans(project, jobs(RUNS, *FROM_VALIDATE))


def test_one_changed_image_reruns_everything_from_validate_data(project):
    from PIL import Image

    rel = "datasets/mnist/train/image_0.jpg"
    with edited(project, rel):
        image = Image.open(project / rel).convert("L")
        image.putpixel((0, 0), 255 - image.getpixel((0, 0)))
        image.save(project / rel)
        expected = jobs(RUNS, *FROM_VALIDATE)  # both runs read datasets/mnist
        # For DVC the dataset is also prepare_data's output, which no longer matches dvc.lock: it
        # would be rebuilt (restoring the image) before the stages run.
        assert_plans(project, expected, expected + collections.Counter({("prepare_data", None, None): 1}))
        assert "data: changed" in why(project, "mnist-gen", "validate-data")


def test_a_new_run_adds_only_its_own_jobs(project):
    with edited(project, "config/config.yaml", "runs/mnist-new", "results/mnist-new"):
        (project / "runs" / "mnist-new").mkdir()
        shutil.copy(project / "runs" / "mnist-tf" / "config.yaml", project / "runs" / "mnist-new" / "config.yaml")
        update_yaml(project / "config" / "config.yaml", {"runs": [*RUNS, "mnist-new"]})
        expected = jobs(["mnist-new"], *FROM_VALIDATE)
        assert snakemake_plan(project) == expected
        # `dvc repro --dry` stops at the first stage whose dependencies, outputs of the new run,
        # do not exist yet; the stages it would run are those `dvc status` reports as changed.
        assert dvc_changed(project) == expected


def test_aimed_trainer_code_reruns_training_on_for_every_run(project):
    found = run_in(project, sys.executable, "-c", "import aimed; print(aimed.__file__)").stdout.strip()
    assert pathlib.Path(found) == project / "aimed" / "__init__.py"
    with edited(project, "aimed/stages/train.py"):
        append(project / "aimed" / "stages" / "train.py", "\n_CHANGED = 1\n")
        assert_plans(project, jobs(RUNS, *FROM_TRAIN))
        assert "aimed.code: changed" in why(project, "mnist-gen", "train")
