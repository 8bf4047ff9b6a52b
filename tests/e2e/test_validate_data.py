"""validate-data on broken copies of a small generated dataset, for both example data pipelines.

Each broken case runs the stage through the ``aimed`` command (in-process, so TensorFlow is
imported once) and checks the exit code, the one-paragraph message naming the bad file and row,
and ``report.json`` with ``ok: false``.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import re
import shutil
from typing import Any, Callable, Dict

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO_ROOT, deep_update, prepare_dataset

from aimed import cli
from aimed.errors import StageFailed
from aimed.fingerprint import FileHashCache, folder_manifest, sha256_text
from aimed.provenance import why
from aimed.run import resolve_run
from aimed.stages import validate_data
from aimed.validation import reading
from aimed.validation.report import validate

SIZES = {"train": 20, "validation": 10, "test": 10}
RUNS = ("mnist-tf", "mnist-gen")
X_SHAPE = {"mnist-tf": "(28, 28, 1)", "mnist-gen": "(28, 28)"}


# ----------------------------------------------------------------------------- helpers






@pytest.fixture(scope="module")
def project(tmp_path_factory) -> pathlib.Path:
    """A project folder with a copy of src/ and the generated dataset in data/ (never modified)."""
    root = tmp_path_factory.mktemp("validate_project")
    shutil.copytree(REPO_ROOT / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    prepare_dataset(root / "data", **SIZES)
    return root


@pytest.fixture
def make_run(project, tmp_path) -> Callable[..., pathlib.Path]:
    """``make_run(run, break_data=None)``: a config of the real ``run`` over a fresh copy of the dataset.

    ``break_data(data_dir)`` damages the copy. Returns the config path; the run's results go to
    ``<project>/results/<run>-<test name>``.
    """

    def make(run: str, break_data: Callable[[pathlib.Path], None] = None) -> pathlib.Path:
        data_dir = tmp_path / "data"
        shutil.copytree(project / "data", data_dir)
        if break_data is not None:
            break_data(data_dir)
        config = yaml.safe_load((REPO_ROOT / "runs" / run / "config.yaml").read_text())
        deep_update(config, {"data_dir": str(data_dir)})
        name = f"{run}-{tmp_path.name}"
        path = project / "runs" / name / "config.yaml"
        path.parent.mkdir(parents=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    return make


def run_cli(config_path: pathlib.Path, project: pathlib.Path, capsys) -> tuple:
    code = cli.main(["validate-data", str(config_path), "--project-dir", str(project)])
    return code, capsys.readouterr().err


def report_of(config_path: pathlib.Path, project: pathlib.Path, name: str = "report.json") -> Dict[str, Any]:
    path = project / "results" / config_path.parent.name / "validate_data" / name
    assert path.is_file(), f"{path} was not written"
    return json.loads(path.read_text())


def without_tf_numbering(report: Dict[str, Any]) -> Dict[str, Any]:
    """``report`` without the numbers TensorFlow errors give to function nodes and datasets."""
    text = re.sub(r"\{\{function_node [^}]*\}\}", "", json.dumps(report))
    return json.loads(re.sub(r"Dataset:\d+", "Dataset", text))


def labels(data_dir: pathlib.Path, split: str) -> pd.DataFrame:
    return pd.read_csv(data_dir / split / "labels.csv", index_col=0)


def save_labels(df: pd.DataFrame, data_dir: pathlib.Path, split: str) -> None:
    df.to_csv(data_dir / split / "labels.csv")


# ----------------------------------------------------------------------------- ways to break a dataset


def missing_image(data_dir):
    (data_dir / "test" / "image_3.jpg").unlink()


def garbage_jpeg(data_dir):
    (data_dir / "test" / "image_3.jpg").write_bytes(b"this is not a JPEG" * 20)


def truncated_jpeg(data_dir):
    path = data_dir / "test" / "image_3.jpg"
    path.write_bytes(path.read_bytes()[:200])


def garbage_jpeg_in_shuffled_train(data_dir):
    (data_dir / "train" / "image_3.jpg").write_bytes(b"\xff\xd8\xff\xe0 garbage after a JPEG header")


def label_column_missing(data_dir):
    save_labels(labels(data_dir, "test").drop(columns=["label"]), data_dir, "test")


def label_not_an_int(data_dir):
    df = labels(data_dir, "test").astype({"label": object})
    df.loc[3, "label"] = "seven"
    save_labels(df, data_dir, "test")


def duplicate_image_name(data_dir):
    df = labels(data_dir, "test")
    df.loc[5, "image name"] = "image_2.jpg"
    save_labels(df, data_dir, "test")


def empty_split(data_dir):
    save_labels(labels(data_dir, "test").iloc[:0], data_dir, "test")


def name_escaping_the_split(data_dir):
    shutil.copy(data_dir / "test" / "image_6.jpg", data_dir / "x.jpg")  # exists, but outside test/
    df = labels(data_dir, "test")
    df.loc[6, "image name"] = "../x.jpg"
    save_labels(df, data_dir, "test")


def symlink_escaping_the_split(data_dir):
    image = data_dir / "test" / "image_6.jpg"
    shutil.move(image, data_dir / "x.jpg")
    image.symlink_to(data_dir / "x.jpg")


def image_of_another_size(data_dir):
    from PIL import Image

    Image.new("L", (30, 30), 128).save(data_dir / "test" / "image_3.jpg", "JPEG")


#: case: (how to break the data, strings the error must contain)
BROKEN = {
    "missing image": (missing_image, ["split 'test'", "row 4 (line 5)", "image 'image_3.jpg' does not exist"]),
    "garbage JPEG": (garbage_jpeg, ["split 'test'", "row 4 (line 5)", "image 'image_3.jpg' cannot be decoded"]),
    "truncated JPEG": (truncated_jpeg, ["split 'test'", "row 4 (line 5)", "image 'image_3.jpg' cannot be decoded"]),
    "garbage JPEG in shuffled train": (
        garbage_jpeg_in_shuffled_train, ["split 'train'", "row 4 (line 5)", "image 'image_3.jpg' cannot be decoded"]),
    "label column missing": (label_column_missing, ["split 'test'", "labels.csv has no column 'label'"]),
    "label not an int": (
        label_not_an_int, ["split 'test'", "row 4 (line 5)", "label 'seven' of 'image_3.jpg' is not a number"]),
    "duplicate image name": (
        duplicate_image_name, ["split 'test'", "row 6 (line 7)", "image name 'image_2.jpg' duplicates row 3 (line 4)"]),
    "empty split": (empty_split, ["split 'test'", "labels.csv lists no images (empty split)"]),
    "name escaping the split": (
        name_escaping_the_split, ["split 'test'", "row 7 (line 8)", "image name '../x.jpg' points outside the split folder"]),
    "symlink escaping the split": (
        symlink_escaping_the_split,
        ["split 'test'", "row 7 (line 8)", "image name 'image_6.jpg' points outside the split folder"]),
    "image of another size": (image_of_another_size, [
        "split 'test'", "x has 2 different shapes", "is data point 3",
        "row 4 (line 5): image 'image_3.jpg' is 30x30 with 1 channel(s), but the split's images are 28x28 with 1"]),
}


# ----------------------------------------------------------------------------- broken datasets


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_dataset_fails_naming_the_file_and_row(case, run, make_run, project, capsys):
    break_data, expected = BROKEN[case]
    config_path = make_run(run, break_data)
    code, stderr = run_cli(config_path, project, capsys)

    assert code == 1, stderr
    text = stderr.strip()
    assert text.startswith("aimed validate-data: error: dataset ") and "Traceback" not in text
    assert len(text.splitlines()) == 1, f"not one paragraph:\n{stderr}"
    for fragment in expected:
        assert fragment in text, f"{fragment!r} not in the error:\n{text}"
    assert "report.json" in text  # where the full report is

    report = report_of(config_path, project)
    assert report["ok"] is False
    errors = " | ".join(report["errors"])
    for fragment in expected:
        assert fragment in errors
    other_splits = {"train", "validation", "test"} - {"train" if "train" in case else "test"}
    assert not [e for e in report["errors"] if any(f"split '{s}'" in e for s in other_splits)], errors
    # The manifest is written even when the data is bad, so the failure can be traced to a dataset version.
    assert report_of(config_path, project, "manifest.json")["fingerprint"] == report["data_fingerprint"]


def test_stage_raises_stage_failed(make_run, project):
    config_path = make_run("mnist-tf", garbage_jpeg)
    with pytest.raises(StageFailed) as info:
        validate_data.run(resolve_run(config_path, project))
    assert info.value.exit_code == 1
    assert str(config_path.parent.name) in str(info.value)
    assert "image 'image_3.jpg' cannot be decoded" in str(info.value)


def test_several_problems_are_all_reported(make_run, project):
    def break_twice(data_dir):
        missing_image(data_dir)
        label_not_an_int(data_dir)
        (data_dir / "validation" / "image_1.jpg").write_bytes(b"garbage")

    config_path = make_run("mnist-gen", break_twice)
    with pytest.raises(StageFailed):
        validate_data.run(resolve_run(config_path, project))
    errors = " | ".join(report_of(config_path, project)["errors"])
    assert "image 'image_3.jpg' does not exist" in errors
    assert "label 'seven'" in errors
    assert "split 'validation', labels.csv row 2 (line 3): image 'image_1.jpg' cannot be decoded" in errors


def test_missing_data_dir_fails(make_run, project, tmp_path, capsys):
    config_path = make_run("mnist-tf", lambda data_dir: shutil.rmtree(data_dir))
    code, stderr = run_cli(config_path, project, capsys)
    assert code == 1
    assert f"key 'data_dir' is '{tmp_path / 'data'}'" in stderr and "is not a folder" in stderr


# ----------------------------------------------------------------------------- a good dataset


@pytest.mark.parametrize("run", RUNS)
def test_good_dataset_report(run, make_run, project, capsys):
    config_path = make_run(run)
    code, stderr = run_cli(config_path, project, capsys)
    assert code == 0, stderr
    report = report_of(config_path, project)
    assert report["ok"] is True and report["errors"] == []
    data_dir = pathlib.Path(yaml.safe_load(config_path.read_text())["data_dir"])
    for split, n in SIZES.items():
        summary = report["splits"][split]
        assert summary["n"] == summary["read"] == n
        assert summary["x_shapes"] == {X_SHAPE[run]: n}
        assert summary["x_dtypes"] == {"uint8": n}
        expected = labels(data_dir, split)["label"].astype(str).value_counts().to_dict()
        assert summary["label_histogram"] == expected
        assert sum(summary["label_histogram"].values()) == n
    assert report["splits"]["test"]["duplicate_ids"] == []

    manifest = report_of(config_path, project, "manifest.json")
    assert manifest["fingerprint"] == report["data_fingerprint"]
    assert manifest["n_files"] == sum(SIZES.values()) + 3  # the images and three labels.csv
    image = data_dir / "test" / "image_0.jpg"
    assert manifest["files"]["test/image_0.jpg"] == hashlib.sha256(image.read_bytes()).hexdigest()


def test_manifest_fingerprint_is_stable_and_tracks_one_byte(make_run, project):
    config_path = make_run("mnist-tf")
    ctx = resolve_run(config_path, project)
    first = validate_data.run(ctx)["data_fingerprint"]
    first_manifest = report_of(config_path, project, "manifest.json")
    assert validate_data.run(ctx)["data_fingerprint"] == first
    assert report_of(config_path, project, "manifest.json") == first_manifest

    # Change one byte of one image: the JFIF header's pixel density, so the image still decodes.
    image = ctx.data_dir / "validation" / "image_4.jpg"
    data = bytearray(image.read_bytes())
    assert data[6:11] == b"JFIF\x00"
    data[15] ^= 0x01
    image.write_bytes(bytes(data))

    report = validate_data.run(ctx)
    assert report["ok"] is True
    manifest = report_of(config_path, project, "manifest.json")
    assert manifest["fingerprint"] != first
    changed = {k for k in manifest["files"] if manifest["files"][k] != first_manifest["files"][k]}
    assert changed == {"validation/image_4.jpg"}


def test_recorded_fingerprint_matches_a_fresh_one(make_run, project):
    # validate-data hands its manifest's fingerprint to the record instead of hashing the data again.
    ctx = resolve_run(make_run("mnist-tf"), project)
    validate_data.run(ctx)
    assert why(ctx.config, ctx.project_dir, "validate-data", ctx.stage_dir("validate-data")) == []


def test_manifest_keeps_the_pathlib_definition(tmp_path):
    """Same files, order and fingerprint as sorted ``Path.rglob`` (what earlier manifests used)."""
    data = tmp_path / "data"
    (data / "a").mkdir(parents=True)
    (data / "a" / "b").write_bytes(b"1")
    (data / "a-b").mkdir()  # sorts before "a/b" as a string, after it part by part
    (data / "a-b" / "x").write_bytes(b"2")
    (data / ".hidden").write_bytes(b"3")
    (data / "linked_file").symlink_to(data / "a" / "b")
    (data / "linked_folder").symlink_to(data / "a", target_is_directory=True)
    expected = {path.relative_to(data).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
                for path in sorted(p for p in data.rglob("*") if p.is_file())}
    cache_path = tmp_path / "cache" / "hashes.json"

    cold = folder_manifest(data, FileHashCache(cache_path))
    assert list(cold["files"].items()) == list(expected.items())
    assert cold["fingerprint"] == sha256_text("".join(f"{k}\0{v}\n" for k, v in expected.items()))
    assert folder_manifest(data, FileHashCache(cache_path)) == cold  # from the cache


@pytest.mark.parametrize("break_data", [None, garbage_jpeg, image_of_another_size],
                         ids=["good", "garbage JPEG", "image of another size"])
def test_batched_read_reports_what_an_element_wise_read_reports(break_data, make_run, project, monkeypatch):
    ctx = resolve_run(make_run("mnist-tf", break_data), project)
    read_in_batches = []
    read_batches = reading.read_batches

    def spy(*args):
        tally = read_batches(*args)
        read_in_batches.append(tally is not None)
        return tally

    monkeypatch.setattr(reading, "read_batches", spy)
    batched = validate(ctx.data_loader(), ctx.data_dir)
    assert read_in_batches == [True, True, break_data is None]  # a failed batch rereads the test split
    monkeypatch.setattr(reading, "batchable", lambda source: False)
    element_wise = validate(ctx.data_loader(), ctx.data_dir)
    assert without_tf_numbering(batched) == without_tf_numbering(element_wise)


def test_regression_targets_are_counted_as_continuous_with_their_range_not_one_bucket_per_value():
    tally = reading.Tally(keep_ids=False)
    x = np.zeros((4, 2), np.float32)
    tally.add(x, np.array([2.302, 0.5, 7.25, np.nan], np.float32), np.ones(4))
    tally.add(x, np.array([-1.5, 3.0, 4.0, 9.5], np.float32), np.ones(4))
    tally.add(x, np.array([0.0, 1.0, 1.0, 0.0], np.float32), np.ones(4))  # whole numbers: classes
    assert tally.labels == {"continuous": 8, "0.0": 2, "1.0": 2}
    assert tally.label_range == [-1.5, 9.5]


def test_x_of_several_inputs_is_described_per_input_and_its_non_finite_values_are_found():
    def point(clinical_value):
        x = {"image": np.zeros((4, 4, 1), np.float32), "clinical": np.full(3, clinical_value, np.float32)}
        return reading.Point(x, np.asarray(1), np.asarray(1.0))

    tally = reading.Tally(keep_ids=False)
    tally.add_points([point(0.5), point(np.nan), point(2.0)])
    assert tally.read == 3
    assert tally.shapes == {"{'image': (4, 4, 1), 'clinical': (3,)}": 3}
    assert tally.dtypes == {"{'image': 'float32', 'clinical': 'float32'}": 3}
    assert tally.non_finite == 1
    assert tally.labels == {"1": 3}


def test_stacked_points_count_as_points_one_by_one():
    points = [
        (np.zeros((2, 2), np.uint8), np.asarray(3), np.asarray("a")),
        (np.ones((2, 2), np.uint8), np.asarray(3.0), np.asarray("bb")),  # label 3.0 is not label 3
        (np.zeros((3,), np.float32), np.asarray([0.1, 0.9]), np.asarray(b"c")),
        (np.full((3,), np.nan, np.float32), np.asarray([0.9, 0.1]), np.asarray(b"d")),
        (np.zeros((3,), np.float64), np.asarray([1]), np.asarray(b"e")),
    ]

    def tally(groups):
        result = reading.Tally(keep_ids=True)
        for group in groups:
            result.add_points(group)
        return result

    one_by_one, stacked = tally([[p] for p in points]), tally([points[:2], points[2:4], points[4:]])
    for counted in (one_by_one, stacked):
        assert counted.read == 5
        assert counted.shapes == {"(2, 2)": 2, "(3,)": 3}
        assert counted.dtypes == {"uint8": 2, "float32": 2, "float64": 1}
        assert counted.labels == {"3": 1, "3.0": 1, "1": 1, "0": 1, "array": 1}
        assert counted.non_finite == 1
        assert [i for ids in counted.ids for i in ids.tolist()] == ["a", "bb", b"c", b"d", b"e"]
