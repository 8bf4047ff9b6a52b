"""``from aimed.augmentation import AugmentorBase``: the import path of code written for ``abstractions.augmentation``."""

from aimed.components import AugmentorBase

__all__ = ["AugmentorBase"]
