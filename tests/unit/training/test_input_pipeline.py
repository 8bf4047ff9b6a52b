"""aimed's input-pipeline tuning yields exactly the batches of the user's pipeline, in order."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import REPO_ROOT, prepare_dataset

from aimed.config import load_config
from aimed.data import batched_split, take
from aimed.run import RunContext
from aimed.training.input_pipeline import EpochCache, FitSources, ReadAhead, seed_everything, tuned

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


def _builder(ctx: RunContext, augment: bool = True):
    loader, augmentor, preprocessor = ctx.data_loader(), ctx.augmentor() if augment else None, ctx.preprocessor()

    def build(split: str):
        batches, _, n_iter = batched_split(loader, augmentor, preprocessor, split)
        return batches, n_iter

    return build


def _epoch_batches(build, split: str, epoch: int, seed: int) -> list:
    """The batches of one epoch as the per-epoch definition gives them: built after seeding with seed + epoch."""
    seed_everything(seed + epoch)
    batches, n_iter = build(split)
    return list(take(batches, n_iter))


def _read_like_fit(sources: FitSources, epochs: range) -> dict:
    """Read the sources in fit's order: an epoch of train, then that epoch's validation."""
    train = iter(take(sources.train, sources.steps["train"] * len(epochs)))
    read = {"train": {}, "validation": {}}
    for epoch in epochs:
        read["train"][epoch] = [next(train) for _ in range(sources.steps["train"])]
        read["validation"][epoch] = list(take(sources.validation(epoch), sources.steps["validation"]))
    return read


@pytest.mark.parametrize("run", RUNS)
def test_joined_epochs_equal_each_epoch_built_on_its_own_seed(contexts, run, tmp_path):
    """One fit's source holds epoch k exactly as built after seeding seed + k, from any start epoch.

    That is what makes a resumed run (starting at epoch 2) see the batches an uninterrupted one
    (starting at 0) sees, for tf.data and generators alike, with both splits read ahead at once.
    """
    build, seed = _builder(contexts[run]), 7
    expected = {split: {epoch: _epoch_batches(build, split, epoch, seed) for epoch in range(4)}
                for split in ("train", "validation")}
    for epochs in (range(0, 4), range(2, 4)):
        caches = {split: EpochCache(None, tmp_path, split, deterministic=True) for split in ("train", "validation")}
        read = _read_like_fit(FitSources(build, epochs, seed, caches, deterministic=True), epochs)
        for split in read:
            for epoch in epochs:
                _assert_same_n(expected[split][epoch], read[split][epoch])
    first, second = expected["train"][0], expected["train"][1]
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(first, second)), "epochs must be shuffled differently"


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("mode", ["memory", "disk"])
def test_cached_validation_batches_repeat_exactly_every_epoch(contexts, run, mode, tmp_path):
    build = _builder(contexts[run], augment=False)
    expected = _epoch_batches(build, "validation", 0, seed=7)
    cache = EpochCache(mode, tmp_path / "cache", "validation", deterministic=True)
    caches = {"train": EpochCache(None, tmp_path, "train", deterministic=True), "validation": cache}
    epochs = range(3)
    read = _read_like_fit(FitSources(build, epochs, 7, caches, deterministic=True), epochs)
    for epoch in epochs:
        _assert_same_n(expected, read["validation"][epoch])
    assert not cache.refused
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
    cache = EpochCache("memory", tmp_path, "train", deterministic=True)
    raw, _ = _builder(contexts[run], augment=False)("train")
    assert not cache.cacheable(raw)
    assert cache.refused


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


@pytest.mark.parametrize("deterministic", [True, False])
def test_tuned_tf_data_gets_parallel_map_options_and_a_prefetch(contexts, deterministic):
    from tensorflow.core.framework import graph_pb2

    ctx = contexts["mnist-tf"]
    batches, _, n_iter = batched_split(ctx.data_loader(), ctx.augmentor(), ctx.preprocessor(), "validation")
    fast = tuned(batches, n_iter, deterministic=deterministic)
    options = fast.options()
    assert options.deterministic is deterministic
    assert options.experimental_optimization.map_parallelization is True
    assert options.experimental_optimization.parallel_batch is True
    graph = graph_pb2.GraphDef()
    graph.ParseFromString(fast._as_serialized_graph().numpy())
    assert "PrefetchDataset" in [node.op for node in graph.node]


def _random_flip_source(stateless: bool):
    """A shuffled tf.data pipeline of 40 images of 4x4 whose map flips at random, in parallel, as users write it."""
    import tensorflow as tf

    images = np.arange(40 * 16, dtype=np.float32).reshape(40, 4, 4, 1)

    def flip(x, i):
        if stateless:
            return tf.image.stateless_random_flip_left_right(x, seed=tf.stack([i, i])), i
        return tf.image.random_flip_left_right(x), i

    def build(split: str):
        source = tf.data.Dataset.from_tensor_slices((images, tf.range(40, dtype=tf.int64))).shuffle(40)
        source = source.map(flip, num_parallel_calls=tf.data.AUTOTUNE).batch(8)
        return source, 5

    return build


def test_stateful_random_ops_are_told_apart_from_stateless_ones_and_shuffle():
    from aimed.training.input_pipeline import draws_stateful_randomness

    seed_everything(3)
    assert draws_stateful_randomness(_random_flip_source(stateless=False)("train")[0])
    assert not draws_stateful_randomness(_random_flip_source(stateless=True)("train")[0])


def test_epochs_of_a_pipeline_with_stateful_random_ops_do_not_depend_on_where_a_fit_starts(tmp_path):
    """Overlapping epochs would share the flips' generator state in thread order (the zoo's tfdata_bytes
    project diverged on resume that way): such a pipeline's epochs run one after the other. Op
    determinism is on, as the train stage turns it on with ``deterministic: true``."""
    from tensorflow.python.framework import config as tf_config

    build = _random_flip_source(stateless=False)
    caches = {split: EpochCache(None, tmp_path, split, True) for split in ("train", "validation")}

    def read(sources: FitSources, count: int) -> list:
        return [batch[0].numpy() for batch in sources.train.take(count)]

    was_on = tf_config.is_op_determinism_enabled()
    tf_config.enable_op_determinism()
    try:
        joined = read(FitSources(build, range(0, 3), 7, caches, True), 15)
        alone = read(FitSources(build, range(2, 3), 7, caches, True), 5)
        resumed = read(FitSources(build, range(0, 1), 7, caches, True, start_batch=2), 3)
    finally:
        if not was_on:  # the rest of this worker's tests run as they would alone
            tf_config.disable_op_determinism()
    for got, want in zip(alone, joined[10:]):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(resumed, joined[2:5]):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("mode", ["memory", "disk"])
def test_a_cached_training_source_resumed_inside_an_epoch_yields_the_batches_after_the_commit(mode, tmp_path):
    """A training source that never changes order is cached (``cache:``); a fit resumed at batch 2 of
    epoch 1 reads the cached epoch from batch 2 on, exactly as the uninterrupted fit read it."""
    import tensorflow as tf

    def build(split: str):
        images = np.arange(40 * 4, dtype=np.float32).reshape(40, 4)
        return tf.data.Dataset.from_tensor_slices((images, np.arange(40))).batch(8), 5

    def sources(epochs: range, start_batch: int = 0) -> FitSources:
        caches = {split: EpochCache(mode, tmp_path / f"{epochs.start}-{start_batch}", split, True)
                  for split in ("train", "validation")}
        return FitSources(build, epochs, 7, caches, True, start_batch)

    joined = [batch[0].numpy() for batch in sources(range(0, 2)).train.take(10)]
    resumed = [batch[0].numpy() for batch in sources(range(1, 2), start_batch=2).train]
    assert len(resumed) == 3
    for got, want in zip(resumed, joined[7:]):
        np.testing.assert_array_equal(got, want)
