"""``from aimed.base_class import BaseClass``: the import path of code written for ``abstractions.base_class``."""

from aimed.components import BaseClass

__all__ = ["BaseClass"]
