"""Making the next item in a worker thread while the caller handles this one."""

from __future__ import annotations

import concurrent.futures
from typing import Generator, Iterator, TypeVar

T = TypeVar("T")

#: What ``next`` returns in the worker once the source is exhausted.
_END = object()


def one_ahead(items: Iterator[T]) -> Generator[T, None, None]:
    """The items of ``items``, each made in a worker thread while the caller handles the one before.

    tf.data and the compiled step run in C++ without the GIL, so the next batch is read and
    predicted while this one goes through the eval functions and into the report (Python).
    Closing the generator waits for the one item under way, so no thread outlives the pass.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="aimed-evaluate") as worker:
        pending = worker.submit(next, items, _END)
        while True:
            item = pending.result()
            if item is _END:
                return
            pending = worker.submit(next, items, _END)
            yield item
