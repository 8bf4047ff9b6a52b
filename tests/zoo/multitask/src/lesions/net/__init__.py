from .builder import TwoHeadNetBuilder

__all__ = ["TwoHeadNetBuilder"]
