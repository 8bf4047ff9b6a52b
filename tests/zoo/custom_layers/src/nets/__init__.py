from .builder import GlyphNetBuilder

__all__ = ["GlyphNetBuilder"]
