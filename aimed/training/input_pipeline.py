"""Speed up the user's input pipeline without changing the batches it yields, or their order.

- A ``tf.data`` pipeline gets options that parallelise its stateless ``map`` calls and batching
  (order kept when ``deterministic`` is on), then ``prefetch(AUTOTUNE)``.
- A plain generator is read ahead by a background thread into a bounded queue, for exactly the
  number of batches the epoch takes, so the thread always ends.
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
from typing import Any, Callable, Iterator, Optional, Tuple

from aimed.data import is_tf_dataset

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
    from tensorflow.core.framework import graph_pb2

    graph = graph_pb2.GraphDef()
    graph.ParseFromString(dataset._as_serialized_graph().numpy())
    ops = [node.op for node in graph.node] + [n.op for f in graph.library.function for n in f.node_def]
    return any(marker in op for op in ops for marker in _ORDER_CHANGING_OPS)


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

    def batches(self, build: Callable[[], Tuple[Any, int]]) -> Tuple[Any, int]:
        """``(batches, n_iter)`` for this epoch; ``build()`` gives the epoch's raw ``(batches, n_iter)``."""
        if self.cached is not None:
            return self.cached
        raw, n_iter = build()
        if self.mode is None or self.refused:
            return tuned(raw, n_iter, self.deterministic), n_iter
        import tensorflow as tf

        if is_tf_dataset(raw):
            if self.split == "train" and changes_between_epochs(raw):
                self._refuse("its tf.data pipeline shuffles or draws random numbers")
                return tuned(raw, n_iter, self.deterministic), n_iter
            dataset = raw.take(n_iter)
        elif self.split == "train":
            self._refuse("it is a plain generator, which may shuffle")
            return tuned(raw, n_iter, self.deterministic), n_iter
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
        # Fill the cache with one complete pass now: tf.data discards a cache whose iterator stops
        # before the end, which is what a fit with steps_per_epoch does.
        for _ in cached:
            pass
        self.cached = (tuned(cached.repeat(), n_iter, self.deterministic), n_iter)
        return self.cached
