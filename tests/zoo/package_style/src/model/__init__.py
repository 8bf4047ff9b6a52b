"""Digit classifiers."""
from .baseline import DigitNet

__all__ = ["DigitNet"]
