"""Text metrics: is generated text faithful to its row, novel, and as varied as the real catalog?

Every score is computed twice: for the synthetic text, and for a real hold-out the models never saw,
so "0.71" always sits next to what real text achieves on the same yardstick.

- consistency: a char n-gram TF-IDF + logistic regression, trained on real text, predicts each
  categorical condition (category, brand...) from a row's text; accuracy against the row's own value;
- price coherence: Spearman correlation between a row's price and a text->price ridge regressor;
- copying: share of texts equal to a training text after normalisation, and share sharing a rare
  8-word span with one (see shopgen.text.guard);
- diversity: distinct-1/2 over the same number of texts, and the KS statistic of lengths against real.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from shopgen.schema import CatalogSchema
from shopgen.text.guard import CopyGuard, normalise

MIN_CLASS_ROWS = 5
OTHER = "<other>"
MAX_FEATURES = 50_000


def row_text(df: pd.DataFrame, schema: CatalogSchema) -> pd.Series:
    """All text columns of a row as one string: what a reader sees of the product."""
    cols = [c.name for c in schema.text_columns]
    return df[cols].fillna("").astype(str).agg(" \n ".join, axis=1)


def _vectorizer():
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=2, max_features=MAX_FEATURES,
                           sublinear_tf=True, dtype=np.float32)


def consistency(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame,
                schema: CatalogSchema) -> dict[str, float]:
    """Per categorical condition: accuracy of a real-text classifier on synthetic and hold-out rows."""
    from sklearn.linear_model import LogisticRegression

    out: dict[str, float] = {}
    targets = [c for c in schema.conditions if schema.column(c).type == "categorical"]
    if not targets:
        return out
    vec = _vectorizer().fit(row_text(train, schema))
    x_train, x_hold, x_syn = (vec.transform(row_text(d, schema)) for d in (train, holdout, synthetic))
    for col in targets:
        y_train = train[col].astype(str)
        counts = y_train.value_counts()
        keep = set(counts[counts >= MIN_CLASS_ROWS].index)
        if len(keep) < 2:
            continue

        def labels(s: pd.Series, keep=keep) -> np.ndarray:
            s = s.astype(str)
            return np.where(s.isin(keep), s, OTHER)

        clf = LogisticRegression(max_iter=300, C=10.0).fit(x_train, labels(y_train))
        out[f"consistency_{col}"] = float((clf.predict(x_syn) == labels(synthetic[col])).mean())
        out[f"consistency_{col}_real"] = float((clf.predict(x_hold) == labels(holdout[col])).mean())
    return out


def price_coherence(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame,
                    schema: CatalogSchema) -> dict[str, float]:
    """Spearman(row price, price a real-text regressor reads from the text), synthetic and hold-out."""
    from scipy.stats import spearmanr
    from sklearn.linear_model import Ridge

    numeric = [c for c in schema.conditions if schema.column(c).is_numeric]
    if not numeric:
        return {}
    col = numeric[0]
    fit_rows = train[col].notna()
    vec = _vectorizer().fit(row_text(train[fit_rows], schema))
    reg = Ridge(alpha=1.0).fit(vec.transform(row_text(train[fit_rows], schema)), np.log1p(train.loc[fit_rows, col].clip(lower=0)))
    out = {}
    for name, df in (("", synthetic), ("_real", holdout)):
        rows = df[col].notna()
        pred = reg.predict(vec.transform(row_text(df[rows], schema)))
        out[f"price_coherence{name}"] = float(spearmanr(df.loc[rows, col], pred).statistic)
    return out


def copying(train: pd.DataFrame, other: pd.DataFrame, schema: CatalogSchema, suffix: str = "") -> dict[str, float]:
    """Per text column: share equal to a training text, and share sharing a rare 8-word span with one."""
    out = {}
    for col in (c.name for c in schema.text_columns):
        guard = CopyGuard.from_texts(train[col])
        texts = other[col].tolist()
        out[f"copy_exact_{col}{suffix}"] = float(np.mean(guard.copies(texts))) if texts else 0.0
        out[f"copy_span_{col}{suffix}"] = float(np.mean(guard.overlaps(texts))) if texts else 0.0
    return out


def distinct_n(texts: list[str], n: int) -> float:
    grams, total = set(), 0
    for text in texts:
        words = normalise(text).split()
        for i in range(len(words) - n + 1):
            grams.add(tuple(words[i:i + n]))
            total += 1
    return len(grams) / total if total else 0.0


def diversity(real: pd.DataFrame, synthetic: pd.DataFrame, schema: CatalogSchema, seed: int = 0) -> dict[str, float]:
    """distinct-1/2 on equal-sized samples (the ratio depends on how many texts), and length KS."""
    from scipy.stats import ks_2samp

    out = {}
    n = min(len(real), len(synthetic))
    for col in (c.name for c in schema.text_columns):
        r = real[col].dropna().astype(str).sample(min(n, real[col].notna().sum()), random_state=seed).tolist()
        s = synthetic[col].dropna().astype(str).sample(min(n, synthetic[col].notna().sum()), random_state=seed).tolist()
        for k in (1, 2):
            out[f"distinct{k}_{col}"] = distinct_n(s, k)
            out[f"distinct{k}_{col}_real"] = distinct_n(r, k)
        out[f"length_ks_{col}"] = float(ks_2samp([len(t) for t in r], [len(t) for t in s]).statistic) if r and s else 1.0
    return out


def text_metrics(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame,
                 schema: CatalogSchema) -> dict[str, float]:
    """All text scores; `*_real` keys hold the same score for the real hold-out (the reference)."""
    scores: dict[str, float] = {}
    scores.update(consistency(train, holdout, synthetic, schema))
    scores.update(price_coherence(train, holdout, synthetic, schema))
    scores.update(copying(train, synthetic, schema))
    scores.update(copying(train, holdout, schema, suffix="_real"))
    scores.update(diversity(holdout, synthetic, schema))
    return {k: round(v, 4) for k, v in scores.items()}
