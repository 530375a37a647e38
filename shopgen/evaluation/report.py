"""`evaluate(real, synthetic, schema)`: one offline report of fidelity, text, privacy and utility.

The hold-out. Every score needs real rows the synthesizer never saw: as the reference a score is shown
beside (a real sample's own quality, text consistency, distance to training rows) and as the test set of
the utility model. Pass them as `holdout=`, with `real` the rows the synthesizer was fitted on; or pass
only `real`, and `holdout_fraction` of it (seeded) becomes the hold-out, the rest the training reference.
The second form is exact when the synthesizer was fitted on that same training part
(`split_holdout(real, fraction, seed)` gives it). If it was fitted on all of `real`, the hold-out rows
were seen in training, and privacy scores understate how close synthetic rows sit to training rows.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from shopgen.errors import ShopgenError
from shopgen.evaluation.scores import HEADLINE
from shopgen.schema import CatalogSchema

DEFAULT_HOLDOUT = 0.2
MIN_HOLDOUT_ROWS = 20
MAX_SYNTHETIC_ROWS = 20_000  # larger catalogs are scored on a seeded sample of this many rows
MAX_TEXT_MODEL_ROWS = 2_000  # synthetic rows the text classifiers score (±1 % on a share)
MAX_TEXT_TRAIN_ROWS = 10_000

def split_holdout(df: pd.DataFrame, fraction: float = DEFAULT_HOLDOUT, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, holdout): `fraction` of the rows, drawn with `seed`, are the hold-out. Fit on train."""
    if not 0 < fraction < 1:
        raise ShopgenError(f"hold-out fraction {fraction} is outside (0, 1); use e.g. 0.2")
    holdout = df.sample(frac=fraction, random_state=seed)
    if len(holdout) < MIN_HOLDOUT_ROWS or len(df) - len(holdout) < MIN_HOLDOUT_ROWS:
        raise ShopgenError(
            f"a {fraction:.0%} hold-out of {len(df)} rows leaves {len(holdout)} hold-out and "
            f"{len(df) - len(holdout)} training rows; give at least {2 * MIN_HOLDOUT_ROWS} rows or change the fraction"
        )
    return df.drop(holdout.index), holdout


class ScoreReport:
    """What every report shares: flat `scores` (name -> float, NaN when not computable) and `meta`, written as
    JSON, checked against gates, and a headline list `to_dict` callers keep."""

    scores: dict[str, float]
    meta: dict[str, Any]
    headline: ClassVar[list[str]] = HEADLINE

    def to_dict(self) -> dict[str, Any]:
        return {"scores": {k: json_number(v) for k, v in self.scores.items()}, "meta": self.meta}

    def to_json(self, path: str | Path) -> Path:
        from shopgen.sinks import write_text

        return write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", path)

    def check(self, minimum: dict[str, float] | None = None, maximum: dict[str, float] | None = None) -> list[str]:
        """Missed gates, e.g. ['quality 0.71 < 0.80']; a gate on a score that could not be computed is missed."""
        from shopgen.evaluation.gates import missed

        return missed(self.scores, minimum or {}, maximum or {})


@dataclass
class EvaluationReport(ScoreReport):
    """`scores` is flat (name -> float, NaN when not computable); `to_html` / `to_json` write it out."""

    scores: dict[str, float]
    meta: dict[str, Any]
    schema: CatalogSchema
    train: pd.DataFrame
    holdout: pd.DataFrame
    synthetic: pd.DataFrame
    details: dict[str, Any] = field(default_factory=dict)

    def to_html(self, path: str | Path) -> Path:
        from shopgen.evaluation.html import render
        from shopgen.sinks import write_text

        return write_text(render(self), path)

    def summary(self) -> str:
        parts = [f"{k} {self.scores[k]:.3f}" for k in HEADLINE if k in self.scores and finite(self.scores[k])]
        return "; ".join(parts)

    @property
    def sizes(self) -> dict[str, int]:
        """How many rows each side had: synthetic, train, holdout."""
        return self.meta["rows"]

    def counts(self) -> str:
        rows = self.sizes
        return f"{rows['synthetic']} synthetic rows against {rows['train']} training and {rows['holdout']} hold-out rows"


def json_number(v: float) -> float | None:
    return None if v is None or not finite(v) else round(float(v), 6)


def finite(v: Any) -> bool:
    return isinstance(v, (int, float, np.floating, np.integer)) and math.isfinite(float(v))


def _frame(df: pd.DataFrame, schema: CatalogSchema, source: str) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise ShopgenError(f"{source} must be a pandas DataFrame, got {type(df).__name__}")
    return schema.check_frame(df, source=source).reset_index(drop=True)


def evaluate(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: CatalogSchema,
    *,
    holdout: pd.DataFrame | None = None,
    holdout_fraction: float = DEFAULT_HOLDOUT,
    target: str | None = None,
    seed: int = 0,
) -> EvaluationReport:
    """Score `synthetic` against `real` (see the module docstring for how the hold-out is chosen).

    `target` is the utility model's column (default: the main price). Sections without the columns
    they need (text metrics without text columns) are left out; every score keeps its real reference.
    """
    t_start = time.perf_counter()
    if target is not None:
        col = schema.column(target)
        if col.type not in ("numeric", "integer", "categorical"):
            raise ShopgenError(f"target {target!r} is a {col.type} column; pick a numeric or categorical column")
    real_df = _frame(real, schema, "real data")
    synth = _frame(synthetic, schema, "synthetic data")
    if holdout is None:
        train, hold = split_holdout(real_df, holdout_fraction, seed)
        how = f"{holdout_fraction:.0%} of the real rows (seed {seed})"
    else:
        train, hold = real_df, _frame(holdout, schema, "hold-out data")
        if len(hold) < MIN_HOLDOUT_ROWS:
            raise ShopgenError(f"the hold-out has {len(hold)} rows; give at least {MIN_HOLDOUT_ROWS}")
        how = "given by the caller"
    train, hold = train.reset_index(drop=True), hold.reset_index(drop=True)
    n_synthetic = len(synth)
    if len(synth) > MAX_SYNTHETIC_ROWS:
        synth = synth.sample(MAX_SYNTHETIC_ROWS, random_state=seed).reset_index(drop=True)

    from shopgen.evaluation.privacy import privacy_scores
    from shopgen.evaluation.tabular import tabular_scores
    from shopgen.evaluation.utility import default_target, utility_scores

    scores: dict[str, float] = {}
    seconds: dict[str, float] = {}
    details: dict[str, Any] = {}

    t = time.perf_counter()
    tab = tabular_scores(train, hold, synth, schema)
    scores.update(tab.scores)
    details["tabular"] = tab
    seconds["tabular"] = time.perf_counter() - t

    if schema.text_columns:
        t = time.perf_counter()
        scores.update(text_scores(train, hold, synth, schema, seed))
        seconds["text"] = time.perf_counter() - t

    t = time.perf_counter()
    priv, distances = privacy_scores(train, hold, synth, schema, seed)
    scores.update(priv)
    details["distances"] = distances
    seconds["privacy"] = time.perf_counter() - t

    t = time.perf_counter()
    target = target or default_target(schema)
    if target is not None:
        scores.update(utility_scores(train, hold, synth, schema, target, seed))
    seconds["utility"] = time.perf_counter() - t

    scores = {k: float(v) for k, v in scores.items()}
    meta = {
        "schema": schema.name, "rows": {"train": len(train), "holdout": len(hold), "synthetic": n_synthetic,
                                        "synthetic_scored": len(synth)},
        "holdout": how, "seed": seed, "utility_target": target,
        "utility_metric": None if target is None else ("R² of log1p" if schema.column(target).is_numeric else "accuracy"),
        "seconds": {k: round(v, 2) for k, v in seconds.items()}, "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    report = EvaluationReport(scores, meta, schema, train, hold, synth, details)
    meta["seconds"]["total"] = round(time.perf_counter() - t_start, 2)
    return report


def text_scores(train: pd.DataFrame, hold: pd.DataFrame, synth: pd.DataFrame, schema: CatalogSchema,
                 seed: int) -> dict[str, float]:
    """The text metrics (shopgen.evaluation.text, fast mode) plus per-catalog aggregates."""
    from shopgen.evaluation import text as T

    scored = synth.sample(min(len(synth), MAX_TEXT_MODEL_ROWS), random_state=seed)
    fit_on = train.sample(min(len(train), MAX_TEXT_TRAIN_ROWS), random_state=seed)
    features = T.text_features(fit_on, hold, scored, schema, clip=T.FAST_CLIP_CHARS)
    out: dict[str, float] = {}
    out.update(T.consistency(fit_on, hold, scored, schema, features=features, fast=True))
    out.update(T.price_coherence(fit_on, hold, scored, schema, features=features))
    out.update(T.copying(train, synth, schema))
    out.update(T.copying(train, hold, schema, suffix="_real"))
    out.update(T.diversity(hold, synth, schema, seed=seed))
    for suffix in ("", "_real"):
        cons = [v for k, v in out.items() if re.fullmatch(rf"consistency_.+{suffix}", k) and k.endswith("_real") == bool(suffix)]
        if cons:
            out[f"text_consistency{suffix}"] = float(np.mean(cons))
        copies = [v for k, v in out.items() if k.startswith("copy_exact_") and k.endswith("_real") == bool(suffix)]
        if copies:
            out[f"text_copy_rate{suffix}"] = float(max(copies))
    ks = [v for k, v in out.items() if k.startswith("length_ks_")]
    if ks:
        out["text_length_ks"] = float(max(ks))
    return out
