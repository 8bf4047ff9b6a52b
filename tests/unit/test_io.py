"""aimed._io: atomic file writes and staged folders."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from aimed._io import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    replace_dir,
    staged_dir,
)


def _leftovers(folder: pathlib.Path) -> list:
    """Hidden temp or replaced entries that a write left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_atomic_write_bytes_creates_parents_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "a" / "b" / "data.bin"
    atomic_write_bytes(target, b"\x00\x01payload")
    assert target.read_bytes() == b"\x00\x01payload"
    assert _leftovers(target.parent) == []


def test_atomic_write_bytes_replaces_by_rename(tmp_path):
    target = tmp_path / "data.bin"
    atomic_write_bytes(target, b"old")
    old_inode = target.stat().st_ino
    with open(target, "rb") as reader:  # a reader that opened the old version keeps reading it whole
        atomic_write_bytes(target, b"new content")
        assert reader.read() == b"old"
    assert target.read_bytes() == b"new content"
    assert target.stat().st_ino != old_inode
    assert _leftovers(tmp_path) == []


def test_atomic_write_bytes_removes_its_temp_file_when_the_rename_fails(tmp_path):
    target = tmp_path / "taken"
    target.mkdir()  # a folder cannot be replaced by a file
    (target / "inside").write_text("kept")
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"data")
    assert _leftovers(tmp_path) == []
    assert (target / "inside").read_text() == "kept"


def test_atomic_write_text_is_utf8(tmp_path):
    target = tmp_path / "note.txt"
    atomic_write_text(target, "Größe → 3 µm\n")
    assert target.read_bytes() == "Größe → 3 µm\n".encode()


def test_atomic_write_json_is_sorted_indented_and_stringifies_unknown_types(tmp_path):
    target = tmp_path / "out.json"
    atomic_write_json(target, {"b": 1, "a": [1, 2], "path": pathlib.Path("x/y")})
    text = target.read_text()
    assert text.endswith("}\n")
    assert json.loads(text) == {"a": [1, 2], "b": 1, "path": "x/y"}
    assert text.index('"a"') < text.index('"b"') < text.index('"path"')
    assert '\n  "a": [' in text  # indent=2


def test_replace_dir_puts_the_new_folder_in_place_of_the_old(tmp_path):
    final = tmp_path / "out"
    final.mkdir()
    (final / "old.txt").write_text("old")
    new = tmp_path / "new"
    new.mkdir()
    (new / "new.txt").write_text("new")
    replace_dir(new, final)
    assert sorted(p.name for p in final.iterdir()) == ["new.txt"]
    assert not new.exists()
    assert _leftovers(tmp_path) == []


def test_replace_dir_creates_missing_parents(tmp_path):
    new = tmp_path / "new"
    new.mkdir()
    (new / "f").write_text("x")
    replace_dir(new, tmp_path / "deep" / "out")
    assert (tmp_path / "deep" / "out" / "f").read_text() == "x"


def test_staged_dir_renames_into_place_on_success(tmp_path):
    final = tmp_path / "result"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with staged_dir(final) as stage:
        assert stage.parent == tmp_path and stage.is_dir() and list(stage.iterdir()) == []
        assert stage != final
        (stage / "new.txt").write_text("new")
        assert (final / "old.txt").read_text() == "old"  # untouched until the block ends
    assert sorted(p.name for p in final.iterdir()) == ["new.txt"]
    assert not stage.exists()
    assert _leftovers(tmp_path) == []


def test_staged_dir_creates_a_folder_that_did_not_exist(tmp_path):
    final = tmp_path / "sub" / "result"
    with staged_dir(final) as stage:
        (stage / "f.txt").write_text("x")
    assert (final / "f.txt").read_text() == "x"
    assert _leftovers(final.parent) == []


def test_staged_dir_keeps_the_old_folder_when_the_block_raises(tmp_path):
    final = tmp_path / "result"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with pytest.raises(RuntimeError, match="boom"), staged_dir(final) as stage:
        (stage / "half.txt").write_text("half")
        raise RuntimeError("boom")
    assert sorted(p.name for p in final.iterdir()) == ["old.txt"]
    assert (final / "old.txt").read_text() == "old"
    assert not stage.exists()
    assert _leftovers(tmp_path) == []


def test_staged_dir_removes_what_a_killed_process_left_for_the_same_folder(tmp_path):
    final = tmp_path / "result"
    stale_tmp = tmp_path / ".result.abc123.tmp"
    stale_old = tmp_path / f".result.old-{os.getpid() + 1}"
    other = tmp_path / ".other.abc.tmp"  # another folder's temp: not ours to remove
    for folder in (stale_tmp, stale_old, other):
        folder.mkdir()
        (folder / "f").write_text("x")
    with staged_dir(final) as stage:
        assert not stale_tmp.exists() and not stale_old.exists()
        (stage / "f").write_text("y")
    assert other.is_dir()
    assert _leftovers(tmp_path) == [".other.abc.tmp"]


def test_written_files_and_staged_folders_get_the_umask_modes_not_tempfiles_private_ones(tmp_path):
    """A teammate on a shared file system reads results/: 0644 files and 0755 folders under umask 022."""
    code = (
        "import os, pathlib, stat, sys\n"
        "os.umask(0o022)\n"
        "from aimed._io import atomic_write_text, staged_dir\n"
        "root = pathlib.Path(sys.argv[1])\n"
        "atomic_write_text(root / 'dvc.yaml', 'stages: {}\\n')\n"
        "with staged_dir(root / 'results') as folder:\n"
        "    atomic_write_text(folder / 'report.csv', 'a\\n')\n"
        "paths = (root / 'dvc.yaml', root / 'results', root / 'results' / 'report.csv')\n"
        "print(' '.join(oct(stat.S_IMODE(p.stat().st_mode)) for p in paths))\n"
    )
    import aimed

    source_root = pathlib.Path(aimed.__file__).resolve().parents[1]  # the aimed under test, not an installed one
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True,
                         cwd=source_root).stdout
    assert out.split() == ["0o644", "0o755", "0o644"]
