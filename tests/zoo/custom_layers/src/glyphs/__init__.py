"""Glyph data: loading and preprocessing."""
