"""Scores for a synthetic catalog against the real one it was learned from."""

from shopgen.evaluation.text import text_metrics

__all__ = ["text_metrics"]
