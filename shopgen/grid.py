"""Putting drawn numbers back on the real catalog's grid, as the schema records it.

A tabular model draws continuous numbers; a catalog's are not. Three things the schema states are
restored after each draw:
- ordered levels (`values` on a numeric column: ratings, bucketed sales): each level is learned as a
  point of its slice of the cumulative share (0..1, the levels in order, each as wide as its share of
  the rows), so a heavy-tailed bucket list (1, 10, 100, 1000+) is as easy to learn as 0..3, the order is
  kept, the drawn shares follow the real ones where the model's marginal is uniform, and draws come back
  as exact levels; a column in a rule keeps its own scale (the rule is on values) and is snapped to the
  nearest level;
- endings (`endings`: cents like .99/.00, or a whole number's last digit): each value takes an ending
  drawn in the real shares (the rest spread over the other endings) and moves to the nearest number
  with it, at most half a unit (or five for last digits) from where it was;
- derived columns: computed from the others, so a total is always price x quantity;
- datetimes on the real resolution: a log kept in whole minutes (or hours, or days) gives moments in whole
  minutes, not the seconds a model draws;
- missing values of a mostly-missing number (a rating 91 % of products lack): SDV fills them with the
  mean and flags them, so the model sees a spike at the mean and draws it back for rated rows; here they
  are filled with draws of the column's own values and flagged in a column of our own, so the values
  the model learns keep the real shape, and rows flagged come back missing.

And one change of variables: the low side of a rule between non-negative columns (a sale price under
its list price, five-star ratings among all ratings) is learned as its share of the high side when,
in the training data, that share varies less (in log terms) than the low side itself. A discount is a
fraction of the price, so the share is what varies little and what a model learns well; SDV's own
inequality handling learns the difference, whose scale grows with the price. Where the two sides are
loosely tied the share would only add the high side's noise, and the rule stays SDV's. Decoding
multiplies back, so the rule holds by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from shopgen.expressions import Expression
from shopgen.schema import CatalogSchema

MISSING = "__shopgen_missing__"  # suffix of the flag column of a filled-in number
FLAG_MIN_MISSING = 0.05  # below this share the mean fill SDV uses changes a column's shape little


@dataclass
class Endings:
    """Every possible ending of one column (as numbers) with its probability; `modulus` 1 or 10."""

    values: np.ndarray
    probs: np.ndarray
    modulus: float

    @classmethod
    def from_shares(cls, shares: tuple[tuple[str, float], ...]) -> Endings:
        cents = "." in shares[0][0]
        places = max(len(k.split(".")[1]) for k, _ in shares) if cents else 0
        possible = np.arange(10**places) / 10**places if cents else np.arange(10, dtype=float)
        listed = {round(float(k), places): p for k, p in shares}
        probs = np.array([listed.get(round(float(e), places), 0.0) for e in possible])
        rest = max(0.0, 1.0 - probs.sum())
        others = probs == 0
        if others.any():
            probs[others] = rest / others.sum()
        return cls(possible, probs / probs.sum(), 1.0 if cents else 10.0)

    def snap(self, x: np.ndarray, lo: float | None, hi: float | None, rng: np.random.Generator) -> np.ndarray:
        out = x.copy()
        at = ~np.isnan(x)
        e = rng.choice(self.values, size=int(at.sum()), p=self.probs)
        m = self.modulus
        v = e + m * np.round((x[at] - e) / m)
        if lo is not None:
            v = np.where(v < lo, v + m, v)
        if hi is not None:
            v = np.where(v > hi, v - m, v)
        out[at] = np.clip(v, lo if lo is not None else -np.inf, hi if hi is not None else np.inf)
        return out


@dataclass
class Grid:
    """The grid of one schema's numbers: levels, endings, derived formulas and the rules they must keep."""

    levels: dict[str, np.ndarray] = field(default_factory=dict)
    ranked: set[str] = field(default_factory=set)
    cumulative: dict[str, np.ndarray] = field(default_factory=dict)  # ranked column -> upper end of each level's slice
    endings: dict[str, Endings] = field(default_factory=dict)
    bounds: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    derived: dict[str, Expression] = field(default_factory=dict)
    rules: list[tuple[str, str, bool]] = field(default_factory=list)
    shares: dict[str, str] = field(default_factory=dict)  # low column -> the high column it is a share of
    flagged: list[str] = field(default_factory=list)  # numbers whose missing values are filled and flagged
    resolution: dict[str, tuple[str, str]] = field(default_factory=dict)  # datetime -> (format, pandas unit)

    @classmethod
    def from_schema(cls, schema: CatalogSchema, data: pd.DataFrame | None = None) -> Grid:
        """`data`: the training rows, which give the slices' widths, the numbers to fill and flag, and where
        a rule's low side is learned as a share. Level columns in a rule keep their scale (the rule is on
        values); the others are learned by their slice."""
        grid = cls()
        ruled = {n for r in schema.rules for n in (r.high, r.low)}
        for col in schema.learned_columns:
            if not col.is_numeric:
                continue
            grid.bounds[col.name] = (col.min, col.max)
            if col.values:
                levels = np.array(sorted(float(v) for v in col.values))
                grid.levels[col.name] = levels
                if col.name not in ruled:
                    grid.ranked.add(col.name)
                    grid.cumulative[col.name] = _cumulative(levels, data[col.name] if data is not None else None)
            elif col.endings:
                grid.endings[col.name] = Endings.from_shares(col.endings)
        grid.derived = {c.name: c.expression for c in schema.tabular_columns if c.derived}
        grid.rules = [(r.high, r.low, r.strict) for r in schema.rules]
        learned = {c.name: c for c in schema.learned_columns}
        lows = [r.low for r in schema.rules]
        for r in schema.rules:
            low, high = learned.get(r.low), learned.get(r.high)
            if (not r.strict and low is not None and high is not None and low.is_numeric and high.is_numeric
                    and lows.count(r.low) == 1 and not low.values
                    and low.min is not None and low.min >= 0 and high.min is not None and high.min >= 0
                    and data is not None and _share_varies_less(data[r.low], data[r.high])):
                grid.shares[r.low] = r.high
        for col in schema.learned_columns:
            if col.type == "datetime" and data is not None:
                moments = col.parse_moments(data[col.name]).dropna()
                unit = next((u for u in ("D", "h", "min", "s") if len(moments) and (moments == moments.dt.floor(u)).all()), None)
                if unit is not None:
                    grid.resolution[col.name] = (col.format, unit)
        if data is not None:
            grid.flagged = [c.name for c in schema.learned_columns if c.is_numeric and c.name not in ruled
                            and not grid.binary(c.name) and data[c.name].isna().mean() >= FLAG_MIN_MISSING
                            and data[c.name].notna().any()]
        return grid

    @property
    def flag_columns(self) -> list[str]:
        """The columns `encode` adds: one missing-value flag per filled number."""
        return [name + MISSING for name in self.flagged]

    def constrained(self, high: str, low: str) -> bool:
        """Whether the rule `high >= low` still needs the model's own constraint (it is not a share)."""
        return self.shares.get(low) != high

    def binary(self, name: str) -> bool:
        return name in self.ranked and len(self.levels[name]) <= 2

    def encode(self, data: pd.DataFrame) -> pd.DataFrame:
        """What the model learns: rule lows as shares, ranked levels as points of their slices, and
        mostly-missing numbers filled from their own values beside a missing-value flag."""
        out = data.copy()
        for low, high in self.shares.items():
            x, h = pd.to_numeric(out[low]).to_numpy(float), pd.to_numeric(out[high]).to_numpy(float)
            with np.errstate(divide="ignore", invalid="ignore"):
                out[low] = np.where(h > 0, x / h, np.where(np.isnan(x) | np.isnan(h), np.nan, 1.0))
        rng = np.random.default_rng(0)  # where in its slice each training value sits: fixed, so a fit repeats
        for name in sorted(n for n in self.ranked if not self.binary(n)):  # two levels are learned as categories
            x = pd.to_numeric(out[name]).to_numpy(float)
            upper = self.cumulative[name]
            lower = np.concatenate([[0.0], upper[:-1]])
            idx = _nearest(self.levels[name], x)
            point = lower[idx] + (upper[idx] - lower[idx]) * rng.uniform(0.02, 0.98, len(x))
            out[name] = np.where(np.isnan(x), np.nan, point)
        for name in self.flagged:
            x = pd.to_numeric(out[name]).to_numpy(float)
            missing = np.isnan(x)
            out[name] = np.where(missing, rng.choice(x[~missing], len(x)), x)
            out[name + MISSING] = missing.astype(int)
        return out

    def decode(self, rows: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        """Drawn rows back on the grid: flagged values missing, levels, endings, then derived columns."""
        for name in self.flagged:
            if name + MISSING in rows:
                missing = pd.to_numeric(rows.pop(name + MISSING), errors="coerce").to_numpy(float) == 1
                rows[name] = np.where(missing, np.nan, pd.to_numeric(rows[name], errors="coerce").to_numpy(float))
        for name, levels in self.levels.items():
            x = pd.to_numeric(rows[name], errors="coerce").to_numpy(float)
            if name in self.ranked and not self.binary(name):
                idx = np.clip(np.searchsorted(self.cumulative[name], np.nan_to_num(x), side="right"), 0, len(levels) - 1)
            else:
                idx = _nearest(levels, x)
            rows[name] = np.where(np.isnan(x), np.nan, levels[idx])
        pending = dict(self.shares)
        while pending:  # a high side that is itself a share is decoded first
            for low, high in list(pending.items()):
                if high not in pending:
                    share = pd.to_numeric(rows[low], errors="coerce").to_numpy(float).clip(0, 1)
                    rows[low] = share * pd.to_numeric(rows[high], errors="coerce").to_numpy(float)
                    del pending[low]
        snapped = set()
        for name, endings in self.endings.items():
            lo, hi = self.bounds[name]
            rows[name] = endings.snap(pd.to_numeric(rows[name], errors="coerce").to_numpy(float), lo, hi, rng)
            snapped.add(name)
        for high, low, strict in self.rules:  # two values snapped past each other: the low one meets the high
            if {high, low} & snapped and not strict and {high, low} <= set(rows.columns):
                broken = (rows[low] > rows[high]).to_numpy()
                rows.loc[broken, low] = rows.loc[broken, high]
        for name, (layout, unit) in self.resolution.items():
            moments = pd.to_datetime(rows[name], format=layout, errors="coerce").dt.round(unit)
            rows[name] = moments.dt.strftime(layout).where(moments.notna(), None)
        for name, expr in self.derived.items():
            rows[name] = expr.evaluate(rows)
        return rows


def _cumulative(levels: np.ndarray, values: pd.Series | None) -> np.ndarray:
    """The upper end of each level's slice of 0..1: cumulative shares of the training rows (equal without data)."""
    if values is None:
        counts = np.ones(len(levels))
    else:
        x = pd.to_numeric(values, errors="coerce").dropna().to_numpy(float)
        counts = np.bincount(_nearest(levels, x), minlength=len(levels)).astype(float) + 1e-3  # no empty slice
    upper = np.cumsum(counts) / counts.sum()
    upper[-1] = 1.0
    return upper


def _share_varies_less(low: pd.Series, high: pd.Series) -> bool:
    """Whether log(low / high) varies less than log(low) over the rows where both are positive."""
    x, h = pd.to_numeric(low, errors="coerce").to_numpy(float), pd.to_numeric(high, errors="coerce").to_numpy(float)
    ok = (x > 0) & (h > 0)
    if ok.sum() < 2:
        return False
    return bool(np.var(np.log(x[ok] / h[ok])) < np.var(np.log(x[ok])))


def _nearest(levels: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Index of the level nearest each value (missing values give 0; callers mask them)."""
    x = np.nan_to_num(x, nan=levels[0])
    right = np.clip(np.searchsorted(levels, x), 0, len(levels) - 1)
    left = np.clip(right - 1, 0, len(levels) - 1)
    return np.where(np.abs(levels[left] - x) <= np.abs(levels[right] - x), left, right)


def ending_keys(values: np.ndarray, decimals: int) -> np.ndarray:
    """Each value's ending: its cents ('0.99') with decimals, else its last digit ('9')."""
    if decimals >= 1:
        frac = np.round((values - np.floor(values)) * 10**decimals).astype(np.int64) % 10**decimals
        return np.array([f"0.{f:0{decimals}d}" for f in frac], dtype=object)
    return np.array([str(int(v)) for v in np.abs(np.round(values)).astype(np.int64) % 10], dtype=object)


def on_grid(values: np.ndarray, shares: tuple[tuple[str, float], ...]) -> np.ndarray:
    """Whether each value ends in one of the listed endings (the real catalog's common ones)."""
    places = len(shares[0][0].split(".")[1]) if "." in shares[0][0] else 0
    return np.isin(ending_keys(values, places), [k for k, _ in shares])
