"""Privacy: do synthetic rows sit closer to the training rows than fresh real rows do?

Distance to closest record (DCR): every row is encoded the same way — numeric columns as their rank
among the training values (so a price in rupees and a rating count weigh alike, and heavy tails do not
dominate), categorical columns one-hot scaled so a mismatch costs 1, missing values as their own flag —
and each row's Euclidean distance to its nearest training row is taken. The real hold-out's distances
are the yardstick: a model that writes new rows from the same distribution puts half of its rows below
the hold-out's median distance (`dcr_share` 0.5); a model that memorises puts more (up to 1.0).
Exact copies compare whole rows (every non-id column, text included) after normalising missing values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from shopgen.schema import CatalogSchema

MAX_TRAIN_ROWS = 20_000  # nearest-neighbour reference: enough for a stable share, bounded cost
MAX_LEVELS = 200  # rarer levels share one "other" column (a mismatch between two rare levels costs 0)


class _Encoder:
    def __init__(self, train: pd.DataFrame, schema: CatalogSchema) -> None:
        self.numeric = [c.name for c in schema.tabular_columns if c.is_numeric]
        self.categorical = [c.name for c in schema.tabular_columns if c.type == "categorical"]
        self.sorted = {c: np.sort(train[c].dropna().to_numpy(float)) for c in self.numeric}
        self.levels = {
            c: {v: i for i, v in enumerate(train[c].astype(str).value_counts().index[:MAX_LEVELS])}
            for c in self.categorical
        }

    def __call__(self, df: pd.DataFrame):
        from scipy import sparse

        blocks = []
        for c in self.numeric:
            ref = self.sorted[c]
            x = df[c].to_numpy(float)
            missing = np.isnan(x)
            rank = (np.searchsorted(ref, np.nan_to_num(x), "left") + np.searchsorted(ref, np.nan_to_num(x), "right"))
            rank = rank / (2 * max(len(ref), 1))
            blocks.append(sparse.csr_matrix(np.column_stack([np.where(missing, 0.0, rank), missing.astype(float)])))
        scale = 1 / np.sqrt(2)
        for c in self.categorical:
            levels = self.levels[c]
            values = df[c].where(df[c].notna(), None)
            codes = np.array([levels.get(str(v), len(levels)) if v is not None else len(levels) + 1 for v in values])
            blocks.append(sparse.csr_matrix((np.full(len(df), scale), (np.arange(len(df)), codes)),
                                            shape=(len(df), len(levels) + 2)))
        return sparse.hstack(blocks, format="csr") if blocks else None


def nearest_distances(train: pd.DataFrame, others: list[pd.DataFrame], schema: CatalogSchema,
                      seed: int = 0) -> list[np.ndarray]:
    """Each row's distance to its nearest training row, for every frame in `others`."""
    from sklearn.neighbors import NearestNeighbors

    if len(train) > MAX_TRAIN_ROWS:
        train = train.sample(MAX_TRAIN_ROWS, random_state=seed)
    encode = _Encoder(train, schema)
    x_train = encode(train)
    if x_train is None:
        return [np.full(len(o), np.nan) for o in others]
    nn = NearestNeighbors(n_neighbors=1, algorithm="brute").fit(x_train)
    return [nn.kneighbors(encode(o))[0][:, 0] if len(o) else np.zeros(0) for o in others]


def _row_keys(df: pd.DataFrame, columns: list[str]) -> pd.Series:
    return df[columns].astype(object).where(df[columns].notna(), "\x00NA").astype(str).agg("\x1f".join, axis=1)


def exact_copies(train: pd.DataFrame, other: pd.DataFrame, schema: CatalogSchema) -> float:
    """Share of `other`'s rows equal to some training row in every non-id column."""
    columns = [c.name for c in schema.columns if c.type != "id"]
    if not len(other) or not columns:
        return 0.0
    known = set(_row_keys(_canonical(train, schema), columns))
    return float(_row_keys(_canonical(other, schema), columns).isin(known).mean())


def _canonical(df: pd.DataFrame, schema: CatalogSchema) -> pd.DataFrame:
    """Numbers as rounded floats, so 3 and 3.0 (int vs float columns) compare equal."""
    out = df.copy()
    for c in schema.columns:
        if c.is_numeric:
            out[c.name] = pd.to_numeric(out[c.name], errors="coerce").astype(float).round(6)
    return out


def privacy_scores(train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame,
                   schema: CatalogSchema, seed: int = 0) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """DCR share and medians, exact row copies (synthetic and hold-out); also the raw distances for plots."""
    d_syn, d_hold = nearest_distances(train, [synthetic, holdout], schema, seed)
    scores: dict[str, float] = {}
    if len(d_hold) and not np.isnan(d_hold).all():
        median = float(np.median(d_hold))
        tie = np.isclose(d_syn, median)
        scores["dcr_share"] = float(np.mean((d_syn < median) & ~tie) + 0.5 * np.mean(tie))
        scores["dcr_median"] = float(np.median(d_syn))
        scores["dcr_median_real"] = median
    scores["exact_copies"] = exact_copies(train, synthetic, schema)
    scores["exact_copies_real"] = exact_copies(train, holdout, schema)
    scores.update(rare_copies(train, synthetic, schema))
    scores.update(rare_copies(train, holdout, schema, suffix="_real"))
    return scores, {"synthetic": d_syn, "real": d_hold}



def rare_copies(train: pd.DataFrame, other: pd.DataFrame, schema: CatalogSchema, suffix: str = "") -> dict[str, float]:
    """Per high-cardinality categorical column (more levels than a schema lists, or mostly unrepeated
    names): the share of values that fewer than five training rows carry. Such a value can point at one
    real product or seller, as a copied title does; the hold-out's share is the reference."""
    from shopgen.inference import MAX_LISTED_VALUES, name_like, rare_levels

    out = {}
    for col in schema.of_type("categorical"):
        values = train[col.name].dropna().astype(str)
        if values.nunique() <= MAX_LISTED_VALUES and not name_like(values):
            continue
        rare = rare_levels(values)
        drawn = other[col.name].dropna().astype(str)
        out[f"rare_copies_{col.name}{suffix}"] = float(drawn.isin(rare).mean()) if len(drawn) else 0.0
    return out
