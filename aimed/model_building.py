"""``from aimed.model_building import ModelBuilderBase``: the import path of code written for ``abstractions.model_building``."""

from aimed.components import ModelBuilderBase

__all__ = ["ModelBuilderBase"]
