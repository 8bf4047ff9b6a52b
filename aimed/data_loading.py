"""``from aimed.data_loading import DataLoaderBase``: the import path of code written for ``abstractions.data_loading``."""

from aimed.components import DataLoaderBase

__all__ = ["DataLoaderBase"]
