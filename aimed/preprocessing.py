"""``from aimed.preprocessing import PreprocessorBase``: the import path of code written for ``abstractions.preprocessing``."""

from aimed.components import PreprocessorBase

__all__ = ["PreprocessorBase"]
