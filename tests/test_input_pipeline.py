"""aimed's input-pipeline tuning yields exactly the batches of the user's pipeline, in order."""

from __future__ import annotations


import numpy as np
import pytest

from aimed.config import load_config
from aimed.data import batched_split, take
from aimed.run import RunContext
from aimed.training.input_pipeline import EpochCache, ReadAhead, tuned
from conftest import REPO_ROOT, prepare_dataset

RUNS = ("mnist-tf", "mnist-gen")
FIRST_K = 12


@pytest.fixture(scope="module")
def contexts(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("input_pipeline")
    prepare_dataset(root / "datasets" / "mnist", train=100, validation=40, test=8)
    contexts = {}
    for run in RUNS:
        config = load_config(REPO_ROOT / "runs" / run / "config.yaml")
        contexts[run] = RunContext(run, config, REPO_ROOT / "runs" / run / "config.yaml", root)
        (root / "src").exists() or (root / "src").symlink_to(REPO_ROOT / "src")
    return contexts


def _first_batches(ctx: RunContext, split: str, seed: int, tune: bool) -> list:
    import keras

    keras.utils.set_random_seed(seed)
    batches, _, _ = batched_split(ctx.data_loader(), ctx.augmentor(), ctx.preprocessor(), split)
    if tune:
        batches = tuned(batches, FIRST_K, deterministic=True)
    return list(take(batches, FIRST_K))


def _assert_same(expected: list, actual: list) -> None:
    assert len(expected) == len(actual) == FIRST_K
    for a, b in zip(expected, actual):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert np.asarray(x).dtype == np.asarray(y).dtype
            assert np.array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("split", ["train", "validation"])
def test_tuned_pipeline_yields_the_same_first_batches_bitwise(contexts, run, split):
    """prefetch, parallel map options and the read-ahead thread change speed, not the batches."""
    ctx = contexts[run]
    raw = _first_batches(ctx, split, seed=7, tune=False)
    _assert_same(raw, _first_batches(ctx, split, seed=7, tune=True))
    if split == "train":  # and the comparison is not vacuous: another seed shuffles differently
        other = _first_batches(ctx, split, seed=8, tune=False)
        assert not all(np.array_equal(a[1], b[1]) for a, b in zip(raw, other))


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("mode", ["memory", "disk"])
def test_cached_validation_batches_repeat_exactly_every_epoch(contexts, run, mode, tmp_path):
    ctx = contexts[run]
    cache = EpochCache(mode, tmp_path / "cache", "validation", deterministic=True)

    def build():
        batches, _, n_iter = batched_split(ctx.data_loader(), None, ctx.preprocessor(), "validation")
        return batches, n_iter

    raw, n_iter = build()
    expected = list(take(raw, n_iter))
    for _ in range(3):
        batches, steps = cache.batches(build)
        assert steps == n_iter
        _assert_same_n(expected, list(take(batches, n_iter)))
    assert cache.cached is not None and not cache.refused
    if mode == "disk":
        assert any((tmp_path / "cache").iterdir())


def _assert_same_n(expected: list, actual: list) -> None:
    assert len(expected) == len(actual)
    for a, b in zip(expected, actual):
        for x, y in zip(a, b):
            assert np.array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("run", RUNS)
def test_cache_is_refused_for_a_shuffled_training_source(contexts, run, tmp_path):
    """Caching a shuffled source would replay the first epoch's order: aimed leaves it uncached."""
    ctx = contexts[run]
    cache = EpochCache("memory", tmp_path, "train", deterministic=True)

    def build():
        batches, _, n_iter = batched_split(ctx.data_loader(), None, ctx.preprocessor(), "train")
        return batches, n_iter

    cache.batches(build)
    assert cache.refused and cache.cached is None


def test_read_ahead_stops_after_count_and_reraises_source_errors():
    def endless():
        i = 0
        while True:
            yield i
            i += 1

    assert list(ReadAhead(endless(), 5)) == [0, 1, 2, 3, 4]

    def broken():
        yield 1
        raise ValueError("bad image_3.jpg")

    reader = ReadAhead(broken(), 10)
    assert next(reader) == 1
    with pytest.raises(ValueError, match="image_3.jpg"):
        next(reader)
