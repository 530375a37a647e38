"""Tabular fidelity: SDMetrics' quality and diagnostic reports on the schema's columns, and rule breaks.

The reports are SDMetrics' unified ones, the same that SDV's `evaluate_quality` / `run_diagnostic` run,
so a score here equals the score an SDV user computes. Column sdtypes come from the schema (numeric and
integer: numerical; categorical: categorical; the primary key: id), never from guessing.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from shopgen.schema import CatalogSchema

TABLE = "catalog"


@dataclass
class TabularResult:
    """Scores (flat) and the per-column / per-pair tables the HTML report draws."""

    scores: dict[str, float]
    shapes: pd.DataFrame = field(default_factory=pd.DataFrame)  # Column, Metric, Score, Score (real)
    pairs: pd.DataFrame = field(default_factory=pd.DataFrame)  # Column 1, Column 2, Score, ...
    validity: pd.DataFrame = field(default_factory=pd.DataFrame)  # Column, Metric, Score
    rules: list[dict] = field(default_factory=list)  # rule, synthetic share broken, real share broken
    failures: dict[str, int] = field(default_factory=dict)  # schema expectation -> failing synthetic rows


def metadata(schema: CatalogSchema) -> dict:
    """SDMetrics metadata for the schema's tabular columns (plus the primary key)."""
    columns: dict[str, dict] = {}
    for col in schema.columns:
        if col.name == schema.primary_key:
            columns[col.name] = {"sdtype": "id"}
        elif col.is_numeric:
            columns[col.name] = {"sdtype": "numerical"}
        elif col.type == "categorical":
            columns[col.name] = {"sdtype": "categorical"}
        elif col.type == "datetime":
            columns[col.name] = {"sdtype": "datetime", "datetime_format": col.format}
    table: dict = {"columns": columns}
    if schema.primary_key:
        table["primary_key"] = schema.primary_key
    return {"tables": {TABLE: table}}


def _run(report_cls, real: pd.DataFrame, synthetic: pd.DataFrame, md: dict):
    report = report_cls()
    cols = list(md["tables"][TABLE]["columns"])
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        report.generate({TABLE: real[cols]}, {TABLE: synthetic[cols]}, md, verbose=False)
    return report


def _properties(report) -> dict[str, float]:
    props = report.get_properties()
    return {str(p): float(s) for p, s in zip(props["Property"], props["Score"])}


def rule_breaks(df: pd.DataFrame, schema: CatalogSchema) -> tuple[np.ndarray, list[tuple[str, float]]]:
    """Rows breaking any schema rule (rows where a side is missing do not count), and the share per rule."""
    broken = np.zeros(len(df), dtype=bool)
    per_rule = []
    for rule in schema.rules:
        high = schema.column(rule.high).as_numbers(df[rule.high])
        low = schema.column(rule.low).as_numbers(df[rule.low])
        with np.errstate(invalid="ignore"):
            bad = (high <= low) if rule.strict else (high < low)
        bad &= ~(np.isnan(high) | np.isnan(low))
        broken |= bad
        per_rule.append((str(rule), float(bad.mean()) if len(df) else 0.0))
    return broken, per_rule


def tabular_scores(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame,
                   schema: CatalogSchema) -> TabularResult:
    """Quality (synthetic vs train, and hold-out vs train as the reference), diagnostic, rule and schema breaks."""
    from sdmetrics.reports import DiagnosticReport, QualityReport

    from shopgen.validation import validate

    md = metadata(schema)
    scores: dict[str, float] = {}
    result = TabularResult(scores)
    if len(md["tables"][TABLE]["columns"]) - bool(schema.primary_key) > 0:
        quality = _run(QualityReport, train, synthetic, md)
        reference = _run(QualityReport, train, holdout, md)
        for suffix, rep in (("", quality), ("_real", reference)):
            props = _properties(rep)
            scores[f"quality{suffix}"] = float(rep.get_score())
            scores[f"column_shapes{suffix}"] = props.get("Column Shapes", np.nan)
            scores[f"column_pair_trends{suffix}"] = props.get("Column Pair Trends", np.nan)
        shapes = quality.get_details("Column Shapes")[["Column", "Metric", "Score"]].reset_index(drop=True)
        ref = reference.get_details("Column Shapes").set_index("Column")["Score"]
        shapes["Score (real)"] = shapes["Column"].map(ref)
        result.shapes = shapes
        for col, s, r in zip(shapes["Column"], shapes["Score"], shapes["Score (real)"]):
            scores[f"shape_{col}"] = float(s)
            scores[f"shape_{col}_real"] = float(r)
        pairs = quality.get_details("Column Pair Trends")
        if len(pairs):
            pairs = pairs.drop(columns=["Table"], errors="ignore").reset_index(drop=True)
            ref_pairs = reference.get_details("Column Pair Trends")
            key = list(zip(ref_pairs["Column 1"], ref_pairs["Column 2"]))
            pairs["Score (real)"] = pd.Series(dict(zip(key, ref_pairs["Score"]))).reindex(
                list(zip(pairs["Column 1"], pairs["Column 2"]))).to_numpy()
        result.pairs = pairs
        diagnostic = _run(DiagnosticReport, train, synthetic, md)
        props = _properties(diagnostic)
        scores["diagnostic"] = float(diagnostic.get_score())
        scores["data_validity"] = props.get("Data Validity", np.nan)
        scores["data_structure"] = props.get("Data Structure", np.nan)
        result.validity = diagnostic.get_details("Data Validity").drop(columns=["Table"], errors="ignore")
    broken, per_rule = rule_breaks(synthetic, schema)
    broken_real, per_rule_real = rule_breaks(holdout, schema)
    scores["rule_violations"] = float(broken.mean()) if len(synthetic) else 0.0
    scores["rule_violations_real"] = float(broken_real.mean()) if len(holdout) else 0.0
    result.rules = [{"rule": r, "synthetic": s, "real": rr} for (r, s), (_, rr) in zip(per_rule, per_rule_real)]
    check = validate(synthetic, schema)
    check_real = validate(holdout, schema)
    scores["invalid_rows"] = len(check.bad_rows) / max(len(synthetic), 1)
    scores["invalid_rows_real"] = len(check_real.bad_rows) / max(len(holdout), 1)
    scores.update(grid_shares(holdout, synthetic, schema))
    result.failures = dict(check.failures)
    return result


def grid_shares(holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: CatalogSchema) -> dict[str, float]:
    """Per column with recorded endings: the share of values on the real grid, synthetic and real."""
    from shopgen.grid import on_grid

    out = {}
    for col in schema.tabular_columns:
        if not col.endings:
            continue
        for suffix, df in (("", synthetic), ("_real", holdout)):
            x = pd.to_numeric(df[col.name], errors="coerce").dropna().to_numpy(float)
            out[f"grid_share_{col.name}{suffix}"] = float(on_grid(x, col.endings).mean()) if len(x) else float("nan")
    return out
