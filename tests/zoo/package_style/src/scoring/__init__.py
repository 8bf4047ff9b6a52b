"""Per-digit scores for the evaluation report."""
from .scorer import DigitScorer

__all__ = ["DigitScorer"]
