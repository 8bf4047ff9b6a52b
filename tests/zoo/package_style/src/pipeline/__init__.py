"""Reading the digit splits and turning them into model-ready batches."""
from .loader import DigitLoader
from .preprocess import DigitPreprocessor

__all__ = ["DigitLoader", "DigitPreprocessor"]
