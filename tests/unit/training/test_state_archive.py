"""aimed.training.state.archive: a stale state folder moved aside, with its belongings; the newest few kept."""

from __future__ import annotations

import json
import time

import pytest

from aimed.training.state import ARCHIVE_DIR, ARCHIVES_KEPT, STATE_FILE, archive


def _state(folder, epoch: int = 1):
    """A state folder with a state.json and a weights file, as a commit leaves it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / STATE_FILE).write_text(json.dumps({"epoch": epoch, "history": [{"epoch": 1}]}))
    (folder / "epoch-00001.npz").write_bytes(b"weights %d" % epoch)
    return folder


@pytest.fixture
def clock(monkeypatch):
    """``time.gmtime`` as the archive sees it, set by the test: ``clock.now = seconds``."""
    real_gmtime = time.gmtime

    class Clock:
        now = 1_700_000_000.0

    monkeypatch.setattr(time, "gmtime", lambda secs=None: real_gmtime(Clock.now if secs is None else secs))
    return Clock


def test_archive_without_state_json_does_nothing(tmp_path):
    folder = tmp_path / "state" / "run" / "train"
    folder.mkdir(parents=True)
    (folder / "epoch-00001.npz").write_bytes(b"orphan")
    belonging = tmp_path / "logs" / "tensorboard"
    belonging.mkdir(parents=True)
    assert archive(folder, belonging) is None
    assert (folder / "epoch-00001.npz").read_bytes() == b"orphan"
    assert belonging.is_dir()
    assert not (folder.parent / ARCHIVE_DIR).exists()


def test_archive_of_a_missing_folder_does_nothing(tmp_path):
    assert archive(tmp_path / "nowhere") is None
    assert list(tmp_path.iterdir()) == []


def test_archive_moves_the_folder_and_its_belongings(tmp_path, clock):
    folder = _state(tmp_path / "state" / "run" / "train")
    belonging = tmp_path / "logs" / "tensorboard"
    (belonging / "train").mkdir(parents=True)
    (belonging / "train" / "events.out.tfevents.1").write_bytes(b"events")
    absent = tmp_path / "logs" / "not-there"

    target = archive(folder, belonging, absent)

    assert target == folder.parent / ARCHIVE_DIR / (time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-0001")
    assert target.name == "20231114T221320-0001"
    assert not folder.exists() and not belonging.exists()
    assert sorted(p.name for p in target.iterdir()) == ["epoch-00001.npz", STATE_FILE, "tensorboard"]
    assert (target / "tensorboard" / "train" / "events.out.tfevents.1").read_bytes() == b"events"
    assert not (target / "not-there").exists()


def test_archive_keeps_the_newest_three(tmp_path, clock):
    folder = tmp_path / "state" / "run" / "train"
    targets = []
    for i in range(5):
        clock.now += 60
        _state(folder, epoch=i + 1)
        targets.append(archive(folder))
    assert ARCHIVES_KEPT == 3
    kept = sorted((folder.parent / ARCHIVE_DIR).iterdir())
    assert kept == targets[-3:]
    assert [json.loads((t / STATE_FILE).read_text())["epoch"] for t in kept] == [3, 4, 5]


def test_archives_within_one_second_get_distinct_names(tmp_path, clock):
    folder = tmp_path / "state" / "run" / "train"
    targets = []
    for i in range(3):
        _state(folder, epoch=i + 1)
        targets.append(archive(folder))
    base = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    assert [t.name for t in targets] == [f"{base}-0001", f"{base}-0002", f"{base}-0003"]
    assert all(t.is_dir() for t in targets)


def test_archive_keeps_the_newest_three_within_one_second(tmp_path, clock):
    folder = tmp_path / "state" / "run" / "train"
    targets = []
    for i in range(5):
        _state(folder, epoch=i + 1)
        targets.append(archive(folder))
        assert targets[-1].is_dir(), f"archive {i + 1} returned {targets[-1]}, which does not exist"
    kept = (folder.parent / ARCHIVE_DIR).iterdir()
    assert sorted(json.loads((t / STATE_FILE).read_text())["epoch"] for t in kept) == [3, 4, 5]
