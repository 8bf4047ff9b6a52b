"""Speed up the user's input pipeline without changing the batches it yields, or their order.

- A ``tf.data`` pipeline gets options that parallelise its stateless ``map`` calls and batching
  (order kept when ``deterministic`` is on), then ``prefetch(AUTOTUNE)``.
- A plain generator is read ahead by a background thread into a bounded queue, for exactly the
  number of batches the fit takes, so the thread always ends.
- The epochs of one ``fit`` call come from :class:`FitSources`, each epoch built after seeding
  with ``seed + epoch``, so a resumed run sees the same batches; a tf.data epoch starts while
  the one before it is read (:func:`_overlapped`), unless the pipeline runs stateful random ops,
  whose draws two overlapping epochs would share in an order set by thread timing.
- ``cache: memory|disk`` keeps a split's batches after the first epoch, but only for sources
  whose order cannot change between epochs: a ``tf.data`` graph with no shuffle or random op,
  or any validation source (the tutorial's loaders never shuffle it). Caching a shuffled source
  would freeze the first epoch's order, so aimed leaves such a source alone and says so.
"""

from __future__ import annotations

import logging
import pathlib
import queue
import threading
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from aimed.data import is_tf_dataset
from aimed.errors import StageFailed

log = logging.getLogger(__name__)

READ_AHEAD_BATCHES = 8
_ORDER_CHANGING_OPS = ("Shuffle", "Random")


class ReadAhead:
    """Iterates ``count`` items of ``source``, produced by a background thread into a bounded queue.

    Exceptions of the source are re-raised in the consumer at the position they happened.
    """

    _END = object()

    def __init__(self, source: Iterator[Any], count: int, depth: int = READ_AHEAD_BATCHES) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._thread = threading.Thread(target=self._produce, args=(iter(source), count), daemon=True,
                                        name="aimed-read-ahead")
        self._thread.start()

    def _produce(self, source: Iterator[Any], count: int) -> None:
        try:
            for _ in range(count):
                self._queue.put((True, next(source)))
        except StopIteration:
            pass
        except BaseException as exc:  # handed to the consumer, which raises it
            self._queue.put((False, exc))
            return
        self._queue.put((True, self._END))

    def __iter__(self) -> "ReadAhead":
        return self

    def __next__(self) -> Any:
        ok, item = self._queue.get()
        if not ok:
            raise item
        if item is self._END:
            raise StopIteration
        return item


def changes_between_epochs(dataset: Any) -> bool:
    """Whether a tf.data graph shuffles or draws random numbers, so that epochs can differ."""
    return any(marker in op for op in _graph_ops(dataset) for marker in _ORDER_CHANGING_OPS)


def _graph_ops(dataset: Any) -> List[str]:
    """The op names of a tf.data graph, its functions' (map, filter, ...) included."""
    from tensorflow.core.framework import graph_pb2

    graph = graph_pb2.GraphDef()
    graph.ParseFromString(dataset._as_serialized_graph().numpy())
    return [node.op for node in graph.node] + [n.op for f in graph.library.function for n in f.node_def]


def draws_stateful_randomness(dataset: Any) -> bool:
    """Whether a tf.data graph runs a stateful random op (``tf.random.uniform``, ``tf.image.random_flip_*``, ...).

    Such an op draws from a generator state that the pipelines of two epochs read at the same
    time would share in an order set by thread timing; stateless ops (``tf.random.stateless_*``,
    ``tf.image.stateless_random_*``) and the dataset ops (``shuffle``) carry their own seeds.
    """
    return any("Random" in op and not op.startswith("Stateless") and not op.endswith("Dataset")
               for op in _graph_ops(dataset))


def tuned(batches: Any, n_iter: int, deterministic: bool) -> Any:
    """The same batches, faster: tf.data options and prefetch, or a read-ahead thread for generators."""
    if not is_tf_dataset(batches):
        # Keras accepts plain generators only (not other iterators), hence the generator wrapper.
        return (batch for batch in ReadAhead(batches, n_iter))
    import tensorflow as tf

    options = tf.data.Options()
    options.deterministic = deterministic
    options.experimental_optimization.map_parallelization = True
    options.experimental_optimization.parallel_batch = True
    return batches.with_options(options).prefetch(tf.data.AUTOTUNE)


def _batch_spec(value: Any) -> Any:
    import tensorflow as tf

    tensor = tf.convert_to_tensor(value)
    return tf.TensorSpec([None] + tensor.shape[1:].as_list(), tensor.dtype)


def _take(first: Any, rest: Iterator[Any], count: int) -> Iterator[Any]:
    yield first
    for _, item in zip(range(count - 1), rest):
        yield item


class EpochCache:
    """Batches of a split kept across epochs (``cache: memory|disk``), for sources that never change order."""

    def __init__(self, mode: Optional[str], folder: pathlib.Path, split: str, deterministic: bool) -> None:
        self.mode = mode
        self.folder = folder
        self.split = split
        self.deterministic = deterministic
        self.cached: Optional[tuple] = None
        self.refused = False

    def _refuse(self, why: str) -> None:
        self.refused = True
        log.warning("cache: %s is not applied to the %s split: %s, and a cache would repeat the first epoch's "
                    "order. Cache inside your DataLoader, below the shuffle, instead.", self.mode, self.split, why)

    def cacheable(self, raw: Any) -> bool:
        """Whether ``raw``, the split's batches of one epoch, may be cached (warns once when refused)."""
        if self.mode is None or self.refused:
            return False
        if self.split == "train":
            if not is_tf_dataset(raw):
                self._refuse("it is a plain generator, which may shuffle")
            elif changes_between_epochs(raw):
                self._refuse("its tf.data pipeline shuffles or draws random numbers")
        return not self.refused

    def fill(self, raw: Any, n_iter: int) -> Any:
        """The cached dataset of ``raw``'s first ``n_iter`` batches, filled by one complete pass now."""
        import tensorflow as tf

        if is_tf_dataset(raw):
            dataset = raw.take(n_iter)
        else:
            rest = iter(raw)
            first = next(rest)
            dataset = tf.data.Dataset.from_generator(lambda: _take(first, rest, n_iter),
                                                     output_signature=tf.nest.map_structure(_batch_spec, first))
        path = ""
        if self.mode == "disk":
            self.folder.mkdir(parents=True, exist_ok=True)
            path = str(self.folder / self.split)
        cached = dataset.cache(path)
        # tf.data discards a cache whose iterator stops before the end, which is what a fit with
        # steps_per_epoch does, so the cache is completed here.
        for _ in cached:
            pass
        return cached


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy, TensorFlow and Keras' global RNGs."""
    import keras

    keras.utils.set_random_seed(seed)


class Turnstile:
    """Lets generator epochs be built and read one at a time, in a fixed order.

    A plain generator draws from the global RNGs while it is read, so two generators read at once
    by their read-ahead threads would interleave their draws at random. In turn, each epoch of each
    split sees the global RNGs exactly as seeded for it.
    """

    def __init__(self, order: List[Tuple[str, int]]) -> None:
        self._order = order
        self._position = 0
        self._changed = threading.Condition()

    def wait(self, key: Tuple[str, int]) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._order[self._position] == key)

    def advance(self) -> None:
        with self._changed:
            self._position += 1
            self._changed.notify_all()


def _joined(datasets: List[Any]) -> Any:
    """``datasets`` concatenated as a balanced tree, so iterators nest log2(n) deep, not n."""
    if len(datasets) == 1:
        return datasets[0]
    middle = len(datasets) // 2
    return _joined(datasets[:middle]).concatenate(_joined(datasets[middle:]))


def _overlapped(epochs: List[Any], n_iter: int) -> Any:
    """The epochs' batches in order, the next epoch's pipeline running while the current one is read.

    A pipeline that shuffles decoded elements (the tutorial's ``shuffle(n)``) decodes a whole
    buffer before its first batch; concatenated, every epoch would start with that stall. A
    deterministic interleave over the epochs, two at a time in blocks of ``n_iter`` batches,
    yields exactly the concatenation, but opens epoch k+1 while epoch k is read, so at most two
    epochs' pipelines (and shuffle buffers) are alive at once.

    The legacy ``parallel_interleave`` is used for its ``buffer_output_elements``: the public
    ``interleave`` buffers up to a block ahead, a whole epoch of batches here (+1 GB on full MNIST).
    """
    if len(epochs) == 1:
        return epochs[0]
    import tensorflow as tf

    nested = _joined([tf.data.Dataset.from_tensors(epoch) for epoch in epochs])
    logger, level = tf.get_logger(), tf.get_logger().level
    logger.setLevel("ERROR")  # its deprecation notice would reach every training log
    try:
        interleave = tf.data.experimental.parallel_interleave(
            lambda epoch: epoch, cycle_length=2, block_length=n_iter, sloppy=False, buffer_output_elements=2,
            prefetch_input_elements=0)
    finally:
        logger.setLevel(level)
    return nested.apply(interleave)


class FitSources:
    """The batches of the epochs of one ``fit`` call: one joined training source, validation per epoch.

    Epoch ``k`` of a split holds the first ``n_iter`` batches of ``build(split)`` called right after
    ``seed_everything(seed + k)``, so it does not depend on where a run started: a resumed run sees
    the same batches as an uninterrupted one. tf.data pipelines are built here, one per epoch; a
    plain generator is built and read at its turn by its read-ahead thread. A split that may be
    cached is built once and replayed.

    Training epochs are joined into one source because Keras keeps one training iterator for all
    epochs when ``steps_per_epoch`` is given. Validation is handed out per epoch
    (:meth:`validation`) because Keras restarts its validation iterator every epoch, which would
    replay the first epoch's batches of a joined source.

    ``start_batch`` resumes a mid-epoch commit: the single epoch in ``epochs`` yields its training
    batches from that one on, the ones before it built and skipped exactly as they were drawn.
    """

    def __init__(self, build: Callable[[str], Tuple[Any, int]], epochs: range, seed: int,
                 caches: Dict[str, EpochCache], deterministic: bool, start_batch: int = 0) -> None:
        if start_batch and len(epochs) != 1:
            raise ValueError("a fit resumed inside an epoch covers that epoch only")
        self._build, self._epochs, self._seed, self._deterministic = build, epochs, seed, deterministic
        self.start_batch = start_batch
        probes: Dict[str, Tuple[Any, int]] = {}
        for split in ("train", "validation"):
            seed_everything(seed + epochs.start)
            probes[split] = build(split)
        self.steps = {split: n_iter for split, (_, n_iter) in probes.items()}
        # Per split: one replayable dataset (cached), a tf.data pipeline per epoch, or None (a generator).
        self._cached: Dict[str, Any] = {}
        self._segments: Dict[str, List[Any]] = {}
        # Epochs overlap (see _overlapped) unless their pipelines would share a random generator state.
        self._overlap: Dict[str, bool] = {}
        generator_splits = []
        for split, (raw, n_iter) in probes.items():
            if caches[split].cacheable(raw):
                self._cached[split] = caches[split].fill(raw, n_iter)
            elif is_tf_dataset(raw):
                self._overlap[split] = len(epochs) > 1 and not draws_stateful_randomness(raw)
                self._segments[split] = [raw.take(n_iter)]
                for epoch in epochs[1:]:
                    seed_everything(seed + epoch)
                    self._segments[split].append(_checked_steps(split, epoch, n_iter, *build(split)).take(n_iter))
            else:
                generator_splits.append(split)
        self._turnstile = Turnstile([(split, epoch) for epoch in epochs for split in generator_splits])
        # Made last: its read-ahead thread starts reading at once, and nothing may reseed after that.
        self.train = self._source("train", epochs)

    def validation(self, epoch: int) -> Any:
        """The validation batches of ``epoch``; call once per epoch, in order."""
        return self._source("validation", range(epoch, epoch + 1))

    def _source(self, split: str, epochs: range) -> Any:
        n_iter = self.steps[split]
        skip = self.start_batch if split == "train" else 0
        if split in self._cached:
            cached = self._cached[split]
            return tuned(cached.repeat() if len(epochs) > 1 else cached.skip(skip), n_iter, self._deterministic)
        if split in self._segments:
            first = epochs.start - self._epochs.start
            segments = self._segments[split][first:first + len(epochs)]
            joined = _overlapped(segments, n_iter) if self._overlap[split] else _joined(segments)
            return tuned(joined.skip(skip), n_iter, self._deterministic)
        batches = _generator_epochs(self._build, split, epochs, n_iter, self._seed, self._turnstile, skip)
        return tuned(batches, n_iter * len(epochs) - skip, self._deterministic)


def _checked_steps(split: str, epoch: int, n_iter: int, batches: Any, epoch_n_iter: int) -> Any:
    if epoch_n_iter != n_iter:
        raise StageFailed(
            f"the {split} split has {epoch_n_iter} batches in epoch {epoch + 1} but {n_iter} in the first epoch "
            f"of this fit; a split must keep its size between epochs. Check the DataLoader's create_*_generator."
        )
    return batches


_ENDED = object()


def _generator_epochs(build: Callable[[str], Tuple[Any, int]], split: str, epochs: range, n_iter: int, seed: int,
                      turnstile: Turnstile, skip: int = 0) -> Iterator[Any]:
    """The epochs' batches of a plain generator, each epoch built at its turn; the first ``skip`` are dropped.

    Skipped batches are still drawn, so the generator's random draws after them are the ones an
    uninterrupted epoch makes.
    """
    for epoch in epochs:
        turnstile.wait((split, epoch))
        passed = False
        try:
            seed_everything(seed + epoch)
            batches = iter(_checked_steps(split, epoch, n_iter, *build(split)))
            for step in range(n_iter):
                batch = next(batches, _ENDED)
                if batch is _ENDED:
                    raise StageFailed(
                        f"the {split} generator ended after {step} of the {n_iter} batches of epoch {epoch + 1}. "
                        f"Make it yield at least n_iter batches per epoch (the tutorial's generators loop forever)."
                    )
                if step == n_iter - 1:
                    # The turn passes once the epoch's last batch is read, not when it is used:
                    # the read-ahead thread stops there after the last epoch.
                    turnstile.advance()
                    passed = True
                if epoch == epochs.start and step < skip:
                    continue
                yield batch
        finally:
            if not passed:
                turnstile.advance()
