"""The catalog's hierarchy, learned from its categorical columns apart from any model.

- A column another column fixes (dmart's SubCategory fixes its Category) is derived from it after
  sampling (`dependencies`), so a hierarchy stays a hierarchy.
- Rare levels share one "other" level in training (`group_rare`) and are drawn back from their
  frequencies given the row's parent column (`rare_parent`): the coarser column that predicts them best
  on held-out rows, so a brand is drawn within its row's aisle.
- A drawn level its parent never had in training is redrawn from the parent's own levels
  (`levels_given`, `redraw_unseen`).
The tabular model (tabular.py) calls these around whichever SDV synthesizer it fits.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

OTHER = "__shopgen_other__"

DEPENDENCY_SHARE = 0.99  # a column "fixes" another when its value tells the other's on >= 99 % of rows


def dependencies(df: pd.DataFrame, categorical: list[str]) -> dict[str, tuple[str, dict, dict]]:
    """Columns another column fixes: {child: (source, source value -> child value, child value -> source
    values and their frequencies)}.

    Each fixed column takes the coarsest column that fixes it; only columns with more levels (ties
    broken by name, so two 1:1 columns don't derive each other) can fix, so there is no cycle; a chain
    (crumbs -> sub-category -> category) is followed to its finest column, which is never derived.
    """
    levels = {c: df[c].nunique() for c in categorical}
    finer = {c: [a for a in categorical if (levels[a], a) > (levels[c], c)] for c in categorical}
    out = {}
    for child in (c for c in categorical if levels[c] > 1):
        best = None
        for source in sorted(finer[child], key=lambda a: (levels[a], a)):
            pair = df[[source, child]].dropna(subset=[source])  # a missing child value is a value too
            if pair.empty:
                continue
            modes = pair.groupby(source, observed=True)[child].agg(lambda s: s.value_counts(dropna=False).index[0])
            same = pair[child].to_numpy(object) == pair[source].map(modes).to_numpy(object)
            same |= pair[child].isna().to_numpy() & pair[source].map(modes).isna().to_numpy()
            if same.mean() >= DEPENDENCY_SHARE:
                best = (source, modes.to_dict())
                break
        if best:
            out[child] = best
    derived = {}
    for child, (source, mapping) in out.items():
        while source in out:  # a chain derives from its finest column: one pass, nothing overwritten
            up, up_map = out[source]
            mapping = {r: mapping.get(v) for r, v in up_map.items() if v in mapping}
            source = up
        inverse = df.dropna(subset=[source]).groupby(child, observed=True)[source].value_counts(normalize=True)
        derived[child] = (source, mapping, {v: (g.index.get_level_values(1).tolist(), g.to_numpy().tolist())
                                            for v, g in inverse.groupby(level=0)})
    return derived


def group_rare(series: pd.Series, keep: int) -> tuple[pd.Series, tuple[list, list] | None]:
    counts = series.value_counts()
    if len(counts) <= keep:
        return series, None
    rare = counts.iloc[keep - 1:]
    grouped = series.where(~series.isin(rare.index), OTHER)
    return grouped, (rare.index.tolist(), (rare / rare.sum()).tolist())


def rare_parent(df: pd.DataFrame, child: str, rare: list, categorical: list[str]) -> tuple[str, dict] | None:
    """The column that best predicts `child`'s rare levels, and their frequencies per its value.

    The pick maximises the two-fold held-out log-likelihood of the rare levels given the parent
    (smoothed towards their overall frequencies), so a parent with many levels that merely memorises
    rows (dmart's Quantity for Brand) loses to one that generalises (SubCategory). None when no
    column beats the overall frequencies.
    """
    rows = df.loc[df[child].isin(rare), [c for c in categorical if c != child] + [child]]
    fold = np.arange(len(rows)) % 2 == 1
    prior = rows[child].value_counts(normalize=True)
    best, best_ll = None, held_out_log_likelihood(rows[child], None, fold, prior)
    for parent in categorical:
        if parent != child and rows[parent].notna().any():
            ll = held_out_log_likelihood(rows[child], rows[parent].astype(object).where(rows[parent].notna(), None), fold, prior)
            if ll > best_ll:
                best, best_ll = parent, ll
    if best is None:
        return None
    table = {}
    for value, group in rows.dropna(subset=[best]).groupby(best, observed=True)[child]:
        counts = group.value_counts()
        table[value] = (counts.index.tolist(), (counts / counts.sum()).tolist())
    return best, table


def levels_given(df: pd.DataFrame, child: str, parent: str) -> dict:
    """{parent value: (the child's levels seen with it, their frequencies)}, missing child values left out."""
    table = {}
    for value, group in df.dropna(subset=[parent, child]).groupby(parent, observed=True)[child]:
        counts = group.value_counts()
        table[value] = (counts.index.tolist(), (counts / counts.sum()).to_numpy())
    return table


def redraw_unseen(rows: pd.DataFrame, child: str, parent: str, table: dict, rng: np.random.Generator) -> None:
    """Rows whose (parent, child) pair never occurred in training take a child level of their parent."""
    seen = pd.MultiIndex.from_tuples([(p, v) for p, (values, _) in table.items() for v in values])
    drawn = pd.MultiIndex.from_arrays([rows[parent].astype(object), rows[child].astype(object)])
    unseen = ~drawn.isin(seen) & rows[child].notna().to_numpy() & rows[parent].isin(list(table)).to_numpy()
    for value in pd.unique(rows.loc[unseen, parent]):
        at = unseen & (rows[parent] == value).to_numpy()
        values, probs = table[value]
        rows.loc[at, child] = rng.choice(np.array(values, dtype=object), size=int(at.sum()), p=probs)


def held_out_log_likelihood(child: pd.Series, parent: pd.Series | None, fold: np.ndarray, prior: pd.Series) -> float:
    """Mean log p(child | parent) of each fold under counts from the other, smoothed towards `prior`."""
    total = 0.0
    for test in (fold, ~fold):
        train_c, test_c = child[~test], child[test]
        if parent is None:
            counts, given = train_c.value_counts(), pd.Series(len(train_c), index=test_c.index)
            joint = test_c.map(counts).fillna(0).to_numpy()
            given = given.to_numpy()
        else:
            keys = pd.DataFrame({"p": parent[~test], "c": train_c})
            joint_counts = keys.value_counts()
            given_counts = keys["p"].value_counts()
            test_keys = list(zip(parent[test], test_c))
            joint = np.array([joint_counts.get(k, 0) for k in test_keys], dtype=float)
            given = parent[test].map(given_counts).fillna(0).to_numpy()
        p = (joint + prior.reindex(test_c).fillna(0).to_numpy()) / (given + 1.0)
        total += float(np.log(np.clip(p, 1e-12, None)).sum())
    return total / len(child)
