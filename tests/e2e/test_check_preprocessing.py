"""check-preprocessing on copies of the training template, for both example data pipelines.

Each case runs the stage through the ``aimed`` command (in-process, so TensorFlow is imported
once) on a fresh copy of ``train_template`` (64 train and 32 validation images, batch_size 16),
whose src/preprocessing.py gets the broken preprocessors below appended. Every failure must exit
1 with a one-paragraph message naming the problem, and leave a complete report (``ok: false``)
or none at all: never a fingerprint, which would tell Snakemake that the stage succeeded.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, Dict, Optional

import pytest
from conftest import SHRUNK, TRAIN_OVERRIDES

from aimed import cli

RUNS = ("mnist-tf", "mnist-gen")
STYLE_SUFFIX = {"mnist-tf": "TF", "mnist-gen": ""}  # PreprocessorTF (tf.data) or Preprocessor (generators)
PIXELS = 28 * 28
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# normalize_by: 0 divides by zero on purpose; the stage, not numpy's warning, must report it.
pytestmark = pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning",
                                        "ignore:invalid value encountered:RuntimeWarning")

BROKEN_PREPROCESSORS = '''


class UnflattenedPreprocessorTF(PreprocessorTF):
    """Test only: forgets to flatten the image for the dense model."""

    def image_preprocess(self, image):
        return tf.cast(image, tf.float32) / self.normalize_by


class UnflattenedPreprocessor(Preprocessor):
    """Test only: forgets to flatten the image for the dense model."""

    def image_preprocess(self, image):
        return np.asarray(image, np.float32) / self.normalize_by


class TextPreprocessorTF(PreprocessorTF):
    """Test only: yields the pixels as strings."""

    def image_preprocess(self, image):
        return tf.strings.as_string(super().image_preprocess(image))


class TextPreprocessor(Preprocessor):
    """Test only: yields the pixels as strings."""

    def image_preprocess(self, image):
        return super().image_preprocess(image).astype(str)


class FloorBatchCountPreprocessorTF(PreprocessorTF):
    """Test only: counts full batches only, so the last, partial batch is never read."""

    def batchify(self, generator, n_data_points):
        batches, _ = super().batchify(generator, n_data_points)
        return batches, n_data_points // self.batch_size


class FloorBatchCountPreprocessor(Preprocessor):
    """Test only: counts full batches only, so the last, partial batch is never read."""

    def batchify(self, generator, n_data_points):
        batches, _ = super().batchify(generator, n_data_points)
        return batches, n_data_points // self.batch_size


class CrashingPreprocessorTF(PreprocessorTF):
    """Test only: fails while building the pipeline."""

    def batchify(self, generator, n_data_points):
        raise RuntimeError("the preprocessor broke while batching")


class CrashingPreprocessor(Preprocessor):
    """Test only: fails while building the pipeline."""

    def batchify(self, generator, n_data_points):
        raise RuntimeError("the preprocessor broke while batching")
'''


# ----------------------------------------------------------------------------- helpers


def project_with(train_project, overrides: Optional[Dict[str, Any]] = None) -> pathlib.Path:
    """A copy of the training template whose src/preprocessing.py also holds ``BROKEN_PREPROCESSORS``."""
    project = train_project(overrides)
    with (project / "src" / "preprocessing.py").open("a") as f:
        f.write(BROKEN_PREPROCESSORS)
    return project


def check_preprocessing(project: pathlib.Path, run: str, capsys) -> tuple:
    code = cli.main(["check-preprocessing", run, "--project-dir", str(project)])
    return code, capsys.readouterr().err


def stage_dir(project: pathlib.Path, run: str) -> pathlib.Path:
    return project / "results" / run / "check_preprocessing"


def report_of(project: pathlib.Path, run: str) -> Dict[str, Any]:
    path = stage_dir(project, run) / "report.json"
    assert path.is_file(), f"{path} was not written"
    return json.loads(path.read_text())


def assert_one_paragraph_error(code: int, stderr: str, expected: list) -> str:
    assert code == 1, stderr
    text = stderr.strip()
    assert text.startswith("aimed check-preprocessing: error: ") and "Traceback" not in text, text
    assert len(text.splitlines()) == 1, f"not one paragraph:\n{stderr}"
    for fragment in expected:
        assert fragment in text, f"{fragment!r} not in the error:\n{text}"
    return text


def assert_no_staging_leftovers(project: pathlib.Path, run: str) -> None:
    leftovers = [p.name for p in (project / "results" / run).iterdir() if p.name.startswith(".check_preprocessing.")]
    assert leftovers == [], f"staging folders left behind: {leftovers}"


# ----------------------------------------------------------------------------- a good run


@pytest.mark.parametrize("run", RUNS)
def test_good_run_writes_the_report_and_the_sample_grid(run, train_project, capsys):
    project = train_project()
    code, stderr = check_preprocessing(project, run, capsys)
    assert code == 0, stderr

    report = report_of(project, run)
    batch_size = TRAIN_OVERRIDES["batch_size"]
    assert report["ok"] is True
    assert report["batch_size"] == batch_size
    assert report["model"]["inputs"] == [{"name": "image", "shape": [None, PIXELS], "dtype": "float32"}]
    assert [o["shape"] for o in report["model"]["outputs"]] == [[None, 10]]
    for split, checked in (("train", 3), ("validation", 2)):  # at most 3 batches; validation has only 2
        summary = report["splits"][split]
        assert summary["problems"] == []
        assert summary["n"] == SHRUNK[split]
        assert summary["n_iter"] == SHRUNK[split] // batch_size
        assert len(summary["batches"]) == checked
        for batch in summary["batches"]:
            assert batch["x"]["shape"] == [batch_size, PIXELS]
            assert batch["x"]["dtype"] in ("float32", "float64")
            assert 0 <= batch["x"]["min"] < batch["x"]["max"] <= 1  # normalized by 255
            assert batch["y"]["shape"] == [batch_size]
            assert batch["weight"]["shape"] == [batch_size]

    grid = stage_dir(project, run) / "samples.png"
    assert grid.read_bytes()[:8] == PNG_SIGNATURE
    assert grid.stat().st_size > 10_000
    import matplotlib.image

    pixels = matplotlib.image.imread(grid)
    assert pixels.shape[0] > 200 and pixels.shape[1] > 800  # 2 rows of 8 samples
    assert pixels.std() > 0.05, "the sample grid is blank"
    assert (stage_dir(project, run) / "fingerprint.json").is_file()
    assert_no_staging_leftovers(project, run)


# ----------------------------------------------------------------------------- broken preprocessing

#: case: (config overrides, with {style} for the run's data style, strings the error must contain per run)
BROKEN = {
    "x does not fit the model input": (
        {"preprocessor_class": "preprocessing.UnflattenedPreprocessor{style}"},
        {"mnist-tf": ["train batch 0: x has shape [16, 28, 28, 1], the model input expects [None, 784]"],
         "mnist-gen": ["train batch 0: x has shape [16, 28, 28], the model input expects [None, 784]"]},
    ),
    "x is text": (
        {"preprocessor_class": "preprocessing.TextPreprocessor{style}"},
        {"mnist-tf": ["train batch 0: x has dtype object, not numeric"],
         "mnist-gen": ["train batch 0: x has dtype <U", ", not numeric"]},
    ),
    "x has NaN and inf": (  # 0/0 and pixel/0
        {"preprocessor": {"normalize_by": 0}},
        {run: ["train batch 0: x has NaN or inf values", "validation batch 0: x has NaN or inf values"]
         for run in RUNS},
    ),
    "n_iter misses the last batch": (
        {"batch_size": 24, "preprocessor_class": "preprocessing.FloorBatchCountPreprocessor{style}"},
        {run: ["train: batchify returned n_iter=2, but n=64 points in batches of 24 need 3",
               "validation: batchify returned n_iter=1, but n=32 points in batches of 24 need 2"]
         for run in RUNS},
    ),
}


def with_style(overrides: Dict[str, Any], run: str) -> Dict[str, Any]:
    return {k: v.format(style=STYLE_SUFFIX[run]) if isinstance(v, str) else v for k, v in overrides.items()}


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_preprocessing_fails_with_a_complete_report(case, run, train_project, capsys):
    overrides, expected = BROKEN[case]
    overrides = with_style(overrides, run)
    project = project_with(train_project, overrides)
    code, stderr = check_preprocessing(project, run, capsys)

    text = assert_one_paragraph_error(code, stderr, expected[run])
    preprocessor_class = overrides.get("preprocessor_class", f"preprocessing.Preprocessor{STYLE_SUFFIX[run]}")
    assert f"preprocessing of run '{run}' does not fit the model built by models.ModelBuilder: " in text
    assert f"Fix {preprocessor_class} or the model" in text
    assert str(stage_dir(project, run) / "report.json") in text

    report = report_of(project, run)
    assert report["ok"] is False
    problems = [p for split in ("train", "validation") for p in report["splits"][split]["problems"]]
    assert problems and all(p in text for p in problems), problems
    for fragment in expected[run]:
        assert any(fragment in p for p in problems), f"{fragment!r} not in the report's problems: {problems}"
    # Snakemake keeps a failed job's outputs and records the job as finished: the missing
    # fingerprint is what makes the next `snakemake` run the check (and fail) again.
    assert not (stage_dir(project, run) / "fingerprint.json").exists()
    assert_no_staging_leftovers(project, run)


@pytest.mark.parametrize("run", RUNS)
def test_crashing_preprocessor_leaves_no_report(run, train_project, capsys):
    project = project_with(train_project, {"preprocessor_class": f"preprocessing.CrashingPreprocessor{STYLE_SUFFIX[run]}"})
    code, stderr = check_preprocessing(project, run, capsys)
    assert_one_paragraph_error(code, stderr, ["RuntimeError: the preprocessor broke while batching"])
    assert not stage_dir(project, run).exists()
    assert_no_staging_leftovers(project, run)


def test_failure_replaces_an_earlier_good_report(train_project, capsys):
    """A good report is not left standing beside a failed check: the failed report replaces it whole."""
    run = "mnist-tf"
    project = train_project()
    assert check_preprocessing(project, run, capsys)[0] == 0
    assert report_of(project, run)["ok"] is True

    config = project / "runs" / run / "config.yaml"
    config.write_text(config.read_text().replace("normalize_by: 255", "normalize_by: 0"))
    code, stderr = check_preprocessing(project, run, capsys)
    assert_one_paragraph_error(code, stderr, ["x has NaN or inf values"])
    assert report_of(project, run)["ok"] is False
    assert sorted(p.name for p in stage_dir(project, run).iterdir()) == ["report.json", "samples.png"]
    assert_no_staging_leftovers(project, run)


@pytest.mark.parametrize("state", ["failed", "not run"])
def test_refuses_when_validate_data_has_not_passed(state, train_project, capsys):
    project = train_project()
    folder = project / "results" / "mnist-tf" / "validate_data"
    (folder / "fingerprint.json").unlink()  # validate-data records its fingerprint only when it passes
    if state == "not run":
        for path in folder.iterdir():
            path.unlink()
    code, stderr = check_preprocessing(project, "mnist-tf", capsys)
    assert code == 1 and f"validate-data has {state}" in stderr and "aimed validate-data mnist-tf" in stderr, stderr
    assert not stage_dir(project, "mnist-tf").exists()


LABEL_OUT_OF_RANGE = 12


@pytest.mark.parametrize("run", RUNS)
def test_labels_beyond_the_models_classes_are_named_by_file_and_row(run, train_project, capsys):
    """Label 12 for a 10-class head passes validate-data; training would die on a TensorFlow graph error."""
    import pandas as pd

    project = train_project()
    for split, row in (("train", 5), ("test", 2)):
        labels_csv = project / "datasets" / "mnist" / split / "labels.csv"
        frame = pd.read_csv(labels_csv, index_col=0)
        frame.loc[frame.index[row], "label"] = LABEL_OUT_OF_RANGE
        frame.to_csv(labels_csv)
    code, stderr = check_preprocessing(project, run, capsys)
    text = assert_one_paragraph_error(code, stderr, [
        "train: labels 12 (1 point) are outside the model's 10 classes (0 to 9)",
        "labels.csv: row 6 (line 7): 'image_5.jpg' label 12",
        "test: labels 12 (1 point) are outside the model's 10 classes",
        "data id 'image_2.jpg' has label 12",
        "labels.csv: row 3 (line 4): 'image_2.jpg' label 12",
    ])
    assert "validation:" not in text


# ----------------------------------------------------------------------------- weights of every shape Keras takes


@pytest.fixture
def segmenter():
    """A tiny compiled segmentation model: (8, 8, 1) images to an (8, 8, 1) sigmoid map."""
    import keras

    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(inputs))
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


@pytest.mark.parametrize("weight_shape, fits", [
    ((4, 8, 8), True), ((4, 8, 8, 1), True),  # per pixel, per pixel with a channel
    ((4,), False),  # Keras 3 does not broadcast a per-sample weight over a per-pixel loss
    ((4, 8), False), ((4, 8, 8, 2), False), ((4, 1), False),
])
def test_per_pixel_weights_are_checked_by_what_the_models_loss_takes(segmenter, weight_shape, fits):
    import numpy as np

    from aimed.preprocessing_check.batches import check_batches

    x = np.random.default_rng(0).random((4, 8, 8, 1), dtype=np.float32)
    y = (x > 0.5).astype(np.float32)
    batches = iter([(x, y, np.ones(weight_shape, np.float32))])
    report, _ = check_batches("train", batches, 4, 1, 4, segmenter)
    if fits:
        assert report["problems"] == []
    else:
        assert report["problems"] == [
            f"train batch 0: weight has shape {list(weight_shape)}; for the model output [None, 8, 8, 1] a weight "
            f"must have shape [4, 8, 8] or [4, 8, 8, 1]"]
