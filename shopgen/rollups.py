"""Columns of a parent table that sum up its child rows (a product's units sold, a customer's first order).

A rollup is declared in the shop schema (`rollups: {units_sold: sum(interactions.Quantity)}`) and computed
from the child rows after they are generated, never learned: the totals then agree with the purchases
exactly, as they do in the real shop, which a model drawing them on their own could not promise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from shopgen.schema import Column
from shopgen.shop_schema import Rollup, ShopSchema

FILLS = {"count": 0, "count_distinct": 0, "sum": 0}  # a parent without child rows; other aggregates are missing


def key_strings(series: pd.Series) -> pd.Series:
    """The present values as the text keys are compared by: 17850.0 and 17850 are both '17850'."""
    present = series.dropna()
    if pd.api.types.is_numeric_dtype(present) and not pd.api.types.is_bool_dtype(present):
        values = present.to_numpy(float)
        if np.all(np.mod(values, 1) == 0):
            return pd.Series(values.astype(np.int64).astype(str), index=present.index)
        return present.astype(str)
    if pd.api.types.infer_dtype(present, skipna=True) == "string":
        return present.astype(str).str.strip()  # codes read from text: the common case, done in one pass
    return present.map(lambda v: str(int(v)) if isinstance(v, float) and v.is_integer() else str(v).strip())


def aggregate(child: pd.DataFrame, key: str, func: str, column: Column | None) -> pd.Series:
    """`func` of the child rows' `column` per key value (the key as `key_strings`); datetimes as moments."""
    keys = key_strings(child[key])
    if func == "count":
        return keys.value_counts()
    values = child.loc[keys.index, column.name]
    if column.type == "datetime":
        values = column.parse_moments(values)
    elif func != "count_distinct":
        values = pd.to_numeric(values, errors="coerce")
    grouped = values.groupby(keys.to_numpy())
    return grouped.nunique() if func == "count_distinct" else getattr(grouped, func)()


def fill(parent_keys: pd.Series, found: pd.Series, func: str, target: Column) -> pd.Series:
    """The aggregate for every parent row, in the parent column's type: counts and sums of no rows are 0."""
    values = found.reindex(key_strings(parent_keys).to_numpy())
    values.index = parent_keys.index
    if func in FILLS:
        values = values.fillna(FILLS[func])
    if target.type == "datetime":
        moments = pd.to_datetime(values)
        return moments.dt.strftime(target.format).where(moments.notna(), None) if target.format else moments
    if target.type == "integer":
        return values.round().astype("Int64")
    values = values.astype(float)
    return values.round(target.decimals) if target.decimals is not None else values


def compute_rollups(frames: dict[str, pd.DataFrame], shop: ShopSchema) -> dict[str, pd.DataFrame]:
    """The tables with every rollup column recomputed from its child rows."""
    out = dict(frames)
    for rollup in shop.rollups:
        out[rollup.table] = out[rollup.table].copy()
        out[rollup.table][rollup.column] = rollup_values(out, shop, rollup)
    return out


def rollup_values(frames: dict[str, pd.DataFrame], shop: ShopSchema, rollup: Rollup) -> pd.Series:
    parent = shop.table(rollup.table)
    key = next(fk.column for fk in shop.keys_of(rollup.child) if fk.parent == rollup.table)
    source = shop.table(rollup.child).column(rollup.child_column) if rollup.child_column else None
    found = aggregate(frames[rollup.child], key, rollup.func, source)
    return fill(frames[rollup.table][parent.primary_key], found, rollup.func, parent.column(rollup.column))
