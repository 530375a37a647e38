"""Utility, train-synthetic-test-real: is a model fitted on the synthetic catalog as good as one fitted on real?

The same model (gradient-boosted trees on the other tabular columns plus a few text features) is fitted
twice — on the synthetic rows and on the real training rows — and both are scored on the real hold-out.
A numeric target is predicted in log space (prices span orders of magnitude) and scored by R²; a
categorical one by accuracy. `utility` is the synthetic model's score over the real model's: 1.0 means
the synthetic catalog teaches as much as the real one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from shopgen.errors import ShopgenError
from shopgen.schema import CatalogSchema

MAX_LEVELS = 250  # HistGradientBoosting takes at most 255 categories per feature
TEXT_COMPONENTS = 16
TEXT_CLIP = 600


def default_target(schema: CatalogSchema) -> str | None:
    """The main price: the first numeric column the text is conditioned on, else one named like a price."""
    numeric = [c.name for c in schema.tabular_columns if c.is_numeric]
    for name in schema.conditions:
        if name in numeric:
            return name
    priced = [n for n in numeric if "price" in n.lower()]
    if priced or numeric:
        return (priced or numeric)[0]
    categorical = [c.name for c in schema.tabular_columns if c.type == "categorical"]
    return categorical[0] if categorical else None


def _encode(fit: pd.DataFrame, apply: list[pd.DataFrame], schema: CatalogSchema, target: str,
            text: bool) -> tuple[list[np.ndarray], list[bool]]:
    """Feature matrices for `apply` frames, with categories and text vocabulary learned from `fit` only."""
    columns, is_cat = [], []
    blocks: list[list[np.ndarray]] = [[] for _ in apply]
    for col in schema.tabular_columns:
        if col.name == target:
            continue
        if col.is_numeric:
            for b, df in zip(blocks, apply):
                b.append(pd.to_numeric(df[col.name], errors="coerce").to_numpy(float)[:, None])
            is_cat.append(False)
        else:
            levels = fit[col.name].dropna().astype(str).value_counts().index[:MAX_LEVELS]
            codes = {v: i for i, v in enumerate(levels)}
            for b, df in zip(blocks, apply):
                b.append(np.array([codes.get(str(v), np.nan) if v is not None and v == v else np.nan
                                   for v in df[col.name]], dtype=float)[:, None])
            is_cat.append(True)
        columns.append(col.name)
    if text and schema.text_columns:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        from shopgen.evaluation.text import row_text

        texts = [row_text(df, schema).str.slice(0, TEXT_CLIP) for df in [fit, *apply]]
        vec = TfidfVectorizer(min_df=2, sublinear_tf=True, dtype=np.float32)
        try:
            x_fit = vec.fit_transform(texts[0])
        except ValueError:  # no word appears twice: nothing to learn from the text
            x_fit = None
        if x_fit is not None and x_fit.shape[1] > TEXT_COMPONENTS:
            svd = TruncatedSVD(TEXT_COMPONENTS, random_state=0).fit(x_fit)
            for b, t in zip(blocks, texts[1:]):
                b.append(svd.transform(vec.transform(t)))
            is_cat += [False] * TEXT_COMPONENTS
        for b, t in zip(blocks, texts[1:]):
            b.append(t.str.len().to_numpy(float)[:, None])
        is_cat.append(False)
    return [np.hstack(b) if b else np.zeros((len(df), 0)) for b, df in zip(blocks, apply)], is_cat


def _fit_score(fit: pd.DataFrame, holdout: pd.DataFrame, schema: CatalogSchema, target: str,
               numeric: bool, text: bool, seed: int) -> float:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.metrics import accuracy_score, r2_score

    fit = fit[fit[target].notna()]
    holdout = holdout[holdout[target].notna()]
    if len(fit) < 10 or len(holdout) < 5:
        return float("nan")
    (x_fit, x_hold), is_cat = _encode(fit, [fit, holdout], schema, target, text)
    # A feature with fewer than two values in the fitting rows (a synthetic column that came out empty or
    # constant) teaches nothing, and an all-missing one breaks the trees' binning: leave it out.
    keep = np.array([np.unique(col[~np.isnan(col)]).size >= 2 for col in x_fit.T], dtype=bool)
    x_fit, x_hold, is_cat = x_fit[:, keep], x_hold[:, keep], list(np.array(is_cat, dtype=bool)[keep])
    if x_fit.shape[1] == 0:
        return float("nan")
    kwargs = {"categorical_features": np.array(is_cat), "max_iter": 200, "random_state": seed,
              "early_stopping": False}
    if numeric:
        y_fit = np.log1p(pd.to_numeric(fit[target]).clip(lower=0).to_numpy(float))
        y_hold = np.log1p(pd.to_numeric(holdout[target]).clip(lower=0).to_numpy(float))
        model = HistGradientBoostingRegressor(**kwargs).fit(x_fit, y_fit)
        return float(r2_score(y_hold, model.predict(x_hold)))
    y_fit, y_hold = fit[target].astype(str).to_numpy(), holdout[target].astype(str).to_numpy()
    if len(set(y_fit)) < 2:
        return 0.0
    model = HistGradientBoostingClassifier(**kwargs).fit(x_fit, y_fit)
    return float(accuracy_score(y_hold, model.predict(x_hold)))


def utility_scores(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame,
                   schema: CatalogSchema, target: str | None = None, seed: int = 0) -> dict[str, float]:
    """`utility` = score(trained on synthetic) / score(trained on real train), both on the real hold-out."""
    target = target or default_target(schema)
    if target is None:
        return {}
    col = schema.column(target)
    if col.type not in ("numeric", "integer", "categorical"):
        raise ShopgenError(f"utility target {target!r} is a {col.type} column; pick a numeric or categorical column")
    numeric = col.is_numeric
    text = bool(schema.text_columns)
    real = _fit_score(train, holdout, schema, target, numeric, text, seed)
    syn = _fit_score(synthetic, holdout, schema, target, numeric, text, seed)
    ratio = max(syn, 0.0) / real if np.isfinite(real) and real > 0 and np.isfinite(syn) else float("nan")
    return {"utility": ratio, "utility_synthetic": syn, "utility_real": real}
