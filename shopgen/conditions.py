"""Conditions on generated rows: `category=Shoes` (equality) and `price=10..50` (inclusive range).

The API takes `{"category": "Shoes", "price": (10, 50)}`; the CLI's `--where` strings parse to the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from shopgen.errors import ShopgenError
from shopgen.schema import CatalogSchema

Conditions = Mapping[str, Any]


def parse_where(items: Iterable[str], schema: CatalogSchema) -> dict[str, Any]:
    """`["category=Shoes", "price=10..50", "rating=4..", "units_sold=..100"]` -> checked conditions."""
    out: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ShopgenError(f"--where {item!r} is not COLUMN=VALUE or COLUMN=LOW..HIGH")
        col = schema.column(name.strip()) if name.strip() in schema.names else None
        if col is None:
            raise ShopgenError(f"--where {item!r}: no column {name.strip()!r}; columns are {schema.names}")
        value = value.strip()
        if col.is_numeric:
            low, dots, high = value.partition("..")
            try:
                bounds = (float(low) if low else None, float(high) if high else None) if dots else (float(value),) * 2
            except ValueError:
                raise ShopgenError(f"--where {item!r}: {col.name} is numeric; write {col.name}=10..50 or {col.name}=10") from None
            out[col.name] = bounds
        else:
            out[col.name] = value
    return check(out, schema)


def check(conditions: Conditions, schema: CatalogSchema) -> dict[str, Any]:
    """Normalise and check conditions against the schema: learned columns only, values it allows."""
    out: dict[str, Any] = {}
    for name, value in conditions.items():
        if name not in schema.names:
            raise ShopgenError(f"condition on {name!r}: no such column; columns are {schema.names}")
        col = schema.column(name)
        if col.type in ("text", "id"):
            raise ShopgenError(f"condition on {name!r}: {col.type} columns are generated, not conditioned on; condition on a categorical or numeric column")
        if col.is_numeric:
            low, high = value if isinstance(value, (tuple, list)) else (value, value)
            low = col.min if low is None else float(low)
            high = col.max if high is None else float(high)
            if low is not None and high is not None and low > high:
                raise ShopgenError(f"condition on {name!r}: empty range {low}..{high}")
            if (col.max is not None and low is not None and low > col.max) or (col.min is not None and high is not None and high < col.min):
                raise ShopgenError(f"condition on {name!r}: {low}..{high} lies outside the schema's range {col.min}..{col.max}")
            out[name] = (low, high)
        else:
            if col.values is not None and value not in col.values and str(value) not in map(str, col.values):
                raise ShopgenError(f"condition {name}={value!r}: not one of the schema's values {list(col.values)[:10]}")
            out[name] = value
    return out


def matches(df: pd.DataFrame, conditions: Conditions) -> np.ndarray:
    """Which rows meet every condition."""
    ok = np.ones(len(df), dtype=bool)
    for name, value in conditions.items():
        if isinstance(value, tuple):
            col = pd.to_numeric(df[name], errors="coerce")
            low, high = value
            if low is not None:
                ok &= (col >= low).to_numpy()
            if high is not None:
                ok &= (col <= high).to_numpy()
        else:
            ok &= (df[name].astype(str) == str(value)).to_numpy()
    return ok
