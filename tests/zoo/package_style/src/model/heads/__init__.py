"""Classification heads."""
from .softmax import softmax_head

__all__ = ["softmax_head"]
