"""aimed.validation.layout: which datasets are in the tutorial's layout, and what is checked there."""

from __future__ import annotations

import pathlib

import numpy as np
from PIL import Image

from aimed.validation.layout import check_layout, uses_tutorial_layout


def _split(root: pathlib.Path, split: str, csv: str, images=("a.png", "b.png")) -> None:
    folder = root / split
    folder.mkdir(parents=True)
    for name in images:
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(folder / name)
    (folder / "labels.csv").write_text(csv)


def test_a_labels_csv_with_other_columns_is_the_users_own_layout(tmp_path):
    """A segmentation index (image and mask names, ids) is not the tutorial's classification list."""
    for split in ("train", "validation", "test"):
        _split(tmp_path, split, ",image name,mask name,id\n0,a.png,b.png,1\n")
    assert not uses_tutorial_layout(tmp_path, ["train", "validation", "test"])


def test_one_split_with_the_tutorials_columns_puts_every_split_under_the_check(tmp_path):
    _split(tmp_path, "train", "image name,label\na.png,0\nb.png,1\n")
    _split(tmp_path, "test", "image name,mask name\na.png,b.png\n")
    assert uses_tutorial_layout(tmp_path, ["train", "validation", "test"])
    assert check_layout(tmp_path, "test") == [
        f"split 'test': {tmp_path / 'test' / 'labels.csv'} has no column 'label' (columns: 'image name', 'mask name')"]


def test_regression_targets_are_labels_and_text_or_empty_labels_are_not(tmp_path):
    _split(tmp_path, "train", "image name,label\na.png,2.302\nb.png,7\n")
    assert check_layout(tmp_path, "train") == []
    _split(tmp_path, "test", "image name,label\na.png,seven\nb.png,\n")
    assert check_layout(tmp_path, "test") == [
        "split 'test', labels.csv row 1 (line 2): label 'seven' of 'a.png' is not a number",
        "split 'test', labels.csv row 2 (line 3): label nan of 'b.png' is not a number",
    ]
