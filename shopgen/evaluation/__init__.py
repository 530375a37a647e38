"""Scores for a synthetic catalog against the real one it was learned from."""

from shopgen.evaluation.report import EvaluationReport, evaluate, split_holdout
from shopgen.evaluation.text import text_metrics

__all__ = ["EvaluationReport", "evaluate", "split_holdout", "text_metrics"]
