"""Evaluation internals: eval-function batching, the streaming report writer, summaries."""
