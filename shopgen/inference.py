"""Schema inference: what each column is, decided from its values, with the reason said.

Every decision rests on a property that holds for any catalog, not on the catalogs it was tried on:

- A string column is categorical when its levels repeat often enough to be learned: most rows carry
  a value that at least MIN_LEVEL_ROWS rows share. A column whose values are mostly unrepeated is
  text when they are multi-word (titles, descriptions; the text model writes new ones and the copy
  guard sees them), an id when they are single tokens with digits (new ones drawn from the pattern),
  and otherwise a categorical of names, flagged (generated values that equal a rare training value are
  reported). The header only breaks ties near a boundary.
- A numeric column's unit (money, percent, count, rating) comes from its header and is checked against
  its values; rules compare only columns of one unit.
- Exact relations (a total that is price x quantity, a discount % that is 100 x (1 - sale/list), a
  duplicated column, a count that sums several others) become derived columns, computed after sampling so they always agree. Like rules,
  a relation must hold on (nearly) every row and fail when one side is shuffled, so it is not a
  coincidence of the marginals.
- Numbers keep the real grid: decimals, price endings (.99, .00, a last digit 9) when they are far from
  uniform, and the levels of ordered low-cardinality numbers (ratings, bucketed sales).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from shopgen.errors import SchemaError
from shopgen.expressions import Expression
from shopgen.grid import ending_keys
from shopgen.schema import CatalogSchema, Column, Rule, within_decimals

MIN_LEVEL_ROWS = 5  # a level shared by this many rows can be learned (and is no one product's value)
CATEGORICAL_MIN_COVERED = 0.5  # categorical: at least half the rows carry such a level
DOUBT_MARGIN = 0.15  # decisions within this of a boundary are flagged
ID_MIN_DISTINCT = 0.8
ID_MIN_DIGITS = 0.9
MAX_LISTED_VALUES = 50
MAX_DECIMALS = 6
MAX_LEVELS = 50  # ordered numeric levels listed in the schema
LEVELS_MIN_COVERED = 0.95
ENDINGS_MIN_TV = 0.25  # endings recorded when their distribution is this far (total variation) from uniform
ENDINGS_MIN_SHARE = 0.01
MAX_ENDINGS = 20
DIGIT_ENDINGS_MIN_MEDIAN = 10  # a last digit is an "ending" only when it is not the whole value
RULE_MIN_SHUFFLED_VIOLATIONS = 0.02
RELATION_MIN_SHARE = 0.995
RELATION_MIN_ROWS = 20
MAX_RELATION_COLUMNS = 40
RELATION_PROBE_ROWS = 2000
MIN_SUM_TERMS = 3  # two-term sums are among the pair formulas
MAX_INFERRED_CONDITIONS = 4
MAX_CONDITION_CARDINALITY = 1000
SENTINEL_MAX_SHARE = 0.05
# Datetime layouts tried in this order; a column is a datetime when one reads every value.
DATETIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M",
                    "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d", "%Y/%m/%d", "%Y/%m/%d %H:%M:%S",
                    "%d/%m/%Y %H:%M", "%d/%m/%Y", "%m/%d/%Y %H:%M", "%m/%d/%Y", "%d.%m.%Y", "%d-%m-%Y")

TEXT_WORDS = {"name", "title", "description", "desc", "summary", "text", "details", "comment", "comments",
              "review", "reviews", "body", "caption", "tags", "keywords", "about", "features", "bullets", "blurb"}
CATEGORY_WORDS = {"category", "categories", "type", "brand", "color", "colour", "size", "country", "status",
                  "class", "group", "department", "segment", "gender", "material", "currency", "theme",
                  "vendor", "tier", "label", "kind", "collection", "region"}
ID_WORDS = {"id", "sku", "code", "ean", "upc", "gtin", "isbn", "asin", "pid", "uuid", "guid", "key"}
UNIT_WORDS = {  # checked in this order: "rating_count" is a count, "discounted_price" money
    "count": {"count", "counts", "qty", "quantity", "units", "sold", "orders", "reviews", "num", "stock",
              "inventory", "customers", "views", "clicks", "votes", "purchases", "sales"},
    "percent": {"percent", "percentage", "pct", "discount", "off", "ratio", "rate", "share"},
    "money": {"price", "prices", "cost", "mrp", "msrp", "amount", "revenue", "total", "fee", "spend", "value",
              "gbp", "usd", "eur", "inr", "rs", "rupees", "dollars", "euros", "pounds", "charge"},
    "rating": {"rating", "ratings", "stars", "score"},
}


@dataclass(frozen=True)
class Decision:
    """One column's kind, why, and whether a reader should check it (`doubtful`)."""

    column: str
    kind: str
    reason: str
    doubtful: bool = False
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Inference:
    """The inferred schema and the decisions behind it (kinds, rules, derived columns, sentinels)."""

    schema: CatalogSchema
    decisions: tuple[Decision, ...]
    notes: tuple[str, ...] = ()

    def table(self, explain: bool = False) -> str:
        """A readable decision table: one line a column (`explain` adds the evidence), then the notes."""
        width = max(len(d.column) for d in self.decisions)
        lines = []
        for d in self.decisions:
            mark = "?" if d.doubtful else " "
            lines.append(f"{mark} {d.column:<{width}}  {d.kind:<11}  {d.reason}")
            if explain and d.evidence:
                lines.append(" " * (width + 17) + "evidence: " + ", ".join(f"{k}={_show(v)}" for k, v in d.evidence.items()))
        lines += [f"  {n}" for n in self.notes]
        if any(d.doubtful for d in self.decisions):
            lines.append("? marks a doubtful decision: check it, and change the column's type in the schema if it is wrong")
        return "\n".join(lines)


def _show(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def header_words(name: str) -> set[str]:
    """'DiscountedPrice' -> {'discounted', 'price'}; 'rating_count' -> {'rating', 'count'}."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    return {w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w}


def _hint(name: str, words: set[str]) -> bool:
    found = header_words(name)
    return bool(found & words) or any(w.rstrip("s") in words for w in found)


# ---- one column ---------------------------------------------------------------------------------
def decide_column(name: str, series: pd.Series) -> tuple[Column, Decision]:
    """The column's schema entry and the decision behind it, from its values alone (plus header hints)."""
    nullable = bool(series.isna().any())
    present = series.dropna()
    if len(present) == 0:
        return Column(name, "categorical", nullable=True), Decision(name, "categorical", "every value is missing", True)
    if pd.api.types.is_bool_dtype(series) or set(present.unique().tolist()) <= {True, False} and present.dtype == object:
        col = Column(name, "categorical", nullable=nullable, values=(False, True))
        return col, Decision(name, "categorical", "true/false values")
    if pd.api.types.is_numeric_dtype(series):
        return _numeric(name, series, nullable)
    return _string(name, present.astype(str), nullable)


def name_like(values: pd.Series) -> bool:
    """Mostly unrepeated levels (seller or product names): fewer than half the rows share a level."""
    return values.nunique() > MIN_LEVEL_ROWS and covered_share(values) < CATEGORICAL_MIN_COVERED


def rare_levels(values: pd.Series) -> set:
    """Levels fewer than MIN_LEVEL_ROWS rows carry: a generated one may point at one real product or seller."""
    counts = values.value_counts()
    return set(counts[counts < MIN_LEVEL_ROWS].index)


def covered_share(values: pd.Series) -> float:
    """Share of values that at least MIN_LEVEL_ROWS values share."""
    counts = values.value_counts()
    return float(counts[counts >= MIN_LEVEL_ROWS].sum() / max(len(values), 1))


def _string(name: str, text: pd.Series, nullable: bool) -> tuple[Column, Decision]:
    n = len(text)
    distinct = text.nunique() / n
    covered = covered_share(text)
    words = text.str.split().str.len()
    lengths = text.str.len()
    token = text.str.fullmatch(r"[A-Za-z0-9_\-:.]+").mean()
    digits = text.str.contains(r"\d").mean()
    evidence = {"rows": n, "distinct_share": round(distinct, 3), "covered_by_repeated_levels": round(covered, 3),
                "median_words": float(words.median()), "median_chars": float(lengths.median()),
                "single_token_share": round(float(token), 3), "with_digits_share": round(float(digits), 3)}
    says_text, says_category, says_id = _hint(name, TEXT_WORDS), _hint(name, CATEGORY_WORDS), _hint(name, ID_WORDS)
    moment = _datetime(name, text, nullable, evidence)
    if moment is not None:
        return moment
    if token == 1.0 and lengths.median() >= 4 and (distinct >= ID_MIN_DISTINCT or says_id and distinct >= 0.5) and (
            digits >= ID_MIN_DIGITS or says_id):
        doubtful = distinct < 0.95
        why = (f"single tokens, {distinct:.0%} distinct{', with digits' if digits >= ID_MIN_DIGITS else ''}"
               f"{', header names an id' if says_id else ''}: an identifier; new ones follow its pattern")
        return (Column(name, "id", nullable=nullable, pattern=infer_pattern(text)),
                Decision(name, "id", why + (" (values repeat: check it is not a category)" if doubtful else ""),
                         doubtful, evidence))
    levels = sorted(text.unique())
    categorical = Column(name, "categorical", nullable=nullable,
                         values=tuple(levels) if len(levels) <= MAX_LISTED_VALUES else None)
    multiword = words.median() >= 2 or lengths.median() >= 20
    text_col = Column(name, "text", nullable=nullable, max_length=int(math.ceil(lengths.max() * 1.1 / 10) * 10))
    if covered >= CATEGORICAL_MIN_COVERED:
        near = covered < CATEGORICAL_MIN_COVERED + DOUBT_MARGIN
        if near and says_text and multiword and not says_category:
            return text_col, Decision(
                name, "text", f"{covered:.0%} of rows share a level with {MIN_LEVEL_ROWS}+ others, near the "
                "boundary; multi-word values and a text header: written by the text model", True, evidence)
        why = f"levels repeat: {covered:.0%} of rows carry a value {MIN_LEVEL_ROWS}+ rows share ({text.nunique()} levels)"
        return categorical, Decision(name, "categorical", why, near and multiword, evidence)
    near = covered >= CATEGORICAL_MIN_COVERED - DOUBT_MARGIN
    if near and says_category:
        why = (f"only {covered:.0%} of rows carry a repeated level, near the boundary; the header names a category")
        return categorical, Decision(name, "categorical", why, True, evidence)
    if multiword:
        why = (f"mostly unrepeated ({covered:.0%} of rows share a level), {words.median():.0f} words a value: "
               "titles or descriptions, written by the text model and guarded against copies")
        return text_col, Decision(name, "text", why, near or (words.median() < 3 and not says_text), evidence)
    why = (f"mostly unrepeated single words ({covered:.0%} of rows share a level): names, kept as categories; "
           "generated values equal to a rare training value are reported")
    return categorical, Decision(name, "categorical", why, True, evidence | {"name_like": True})


def _datetime(name: str, text: pd.Series, nullable: bool, evidence: dict) -> tuple[Column, Decision] | None:
    """A datetime column when one layout reads every value (days and months both fitting is flagged)."""
    if not text.str.match(r"\d").all():
        return None
    fits = [f for f in DATETIME_FORMATS if pd.to_datetime(text, format=f, errors="coerce").notna().all()]
    if not fits:
        return None
    fmt = fits[0]
    moments = pd.to_datetime(text, format=fmt)
    col = Column(name, "datetime", nullable=nullable, format=fmt,
                 min=moments.min().strftime(fmt), max=moments.max().strftime(fmt))
    ambiguous = any(f != fmt and f.replace("%d", "%m") == fmt.replace("%d", "%m") for f in fits[1:])
    why = f"every value reads as {fmt!r}, {col.min} to {col.max}: learned as moments in time"
    if ambiguous:
        why += "; day and month could be swapped (both fit every value): check the format"
    return col, Decision(name, "datetime", why, ambiguous, evidence | {"format": fmt})


def _numeric(name: str, series: pd.Series, nullable: bool) -> tuple[Column, Decision]:
    values = series.dropna().to_numpy(dtype="float64")
    decimals = _decimals(values)
    kind = "integer" if decimals == 0 else "numeric"
    distinct = len(np.unique(values))
    evidence: dict[str, Any] = {"rows": len(values), "distinct": distinct, "decimals": decimals,
                                "min": _tidy(values.min()), "max": _tidy(values.max())}
    if kind == "integer" and distinct == len(values) and _hint(name, ID_WORDS) and len(values) >= 20:
        col = Column(name, "id", nullable=nullable, pattern=infer_pattern(pd.Series(values.astype(np.int64).astype(str))))
        return col, Decision(name, "id", "distinct whole numbers under an id header: an identifier", False, evidence)
    unit, unit_why = _unit(name, values)
    col = Column(name, kind, nullable=nullable, min=_tidy(values.min()), max=_tidy(values.max()),
                 decimals=None if kind == "integer" else decimals, unit=unit)
    parts = [f"{'whole numbers' if kind == 'integer' else f'{decimals} decimals' if decimals is not None else 'real numbers'}"
             f" {_tidy(values.min())}..{_tidy(values.max())}"]
    if unit:
        parts.append(f"{unit} ({unit_why})")
    covered = covered_share(pd.Series(values))
    if 2 <= distinct <= MAX_LEVELS and covered >= LEVELS_MIN_COVERED:
        col = replace(col, values=tuple(_tidy(v) for v in np.unique(values)))
        parts.append(f"{distinct} ordered levels that repeat ({covered:.0%} of rows): kept ordered and exact")
    else:
        endings = infer_endings(values, decimals)
        if endings is not None:
            col = replace(col, endings=endings)
            top = ", ".join(f"{k} {v:.0%}" for k, v in endings[:3])
            parts.append(f"endings {top}: reproduced in those shares")
    sentinel = find_sentinel(values, unit)
    doubtful = False
    if sentinel is not None:
        value, count, why = sentinel
        parts.append(f"{count} row(s) hold {_tidy(value)}, {why}: probably 'unknown'; make it missing if so")
        doubtful = True
        evidence["sentinel"] = _tidy(value)
    return col, Decision(name, kind, "; ".join(parts), doubtful, evidence)


def _unit(name: str, values: np.ndarray) -> tuple[str | None, str]:
    """The unit a header names, kept only when the values agree with it."""
    for unit, words in UNIT_WORDS.items():
        if not _hint(name, words):
            continue
        low, high = float(values.min()), float(values.max())
        if unit == "count" and low >= 0 and np.allclose(values, np.round(values)):
            return unit, "whole numbers >= 0 under a count header"
        if unit == "percent" and low >= 0 and high <= 100:
            return unit, f"values in 0..{'1' if high <= 1 else '100'} under a percentage header"
        if unit == "money" and low >= 0:
            return unit, "values >= 0 under a price header"
        if unit == "rating" and low >= 0 and high <= 10:
            return unit, "values in 0..10 under a rating header"
    return None, ""


def _decimals(values: np.ndarray) -> int | None:
    """The fewest decimals that represent every value, or None when there are more than MAX_DECIMALS."""
    for d in range(MAX_DECIMALS + 1):
        if within_decimals(values, d).all():
            return d
    return None


def _tidy(x: float) -> float | int:
    return int(x) if float(x).is_integer() else float(x)


def infer_endings(values: np.ndarray, decimals: int | None) -> tuple[tuple[str, float], ...] | None:
    """The common endings and their shares when they are far from uniform, else None.

    Cents for 1 or 2 decimals; the last digit of whole numbers that are typically 10 or more. A uniform
    ending (a count's last digit) carries no pattern and is left out.
    """
    if decimals is None or decimals > 2 or len(values) < RELATION_MIN_ROWS:
        return None
    if decimals == 0 and np.median(np.abs(values)) < DIGIT_ENDINGS_MIN_MEDIAN:
        return None
    keys = ending_keys(values, decimals)
    possible = 10**decimals if decimals else 10
    shares = pd.Series(keys).value_counts(normalize=True)
    tv = 0.5 * (np.abs(shares.to_numpy() - 1 / possible).sum() + (possible - len(shares)) / possible)
    if tv < ENDINGS_MIN_TV:
        return None
    listed = shares[shares >= ENDINGS_MIN_SHARE].iloc[:MAX_ENDINGS]
    return tuple((str(k), round(float(v), 4)) for k, v in listed.items())


def find_sentinel(values: np.ndarray, unit: str | None) -> tuple[float, int, str] | None:
    """(value, rows, why) for a stand-in value: a 0 price or rating, a negative code among non-negative
    values, or a 99..9 far above the rest; held by few rows."""
    n = len(values)
    for candidate in (0.0, -1.0, -9.0, -99.0, -999.0):
        hits = values == candidate
        rest = values[~hits]
        if not hits.any() or hits.mean() > SENTINEL_MAX_SHARE or len(rest) == 0:
            continue
        if candidate < 0 and rest.min() >= 0:
            return candidate, int(hits.sum()), "the only negative value"
        if candidate == 0 and unit in ("money", "rating") and rest.min() > 0:
            return candidate, int(hits.sum()), f"while every other value is >= {_tidy(rest.min())}"
    top = values.max()
    if top >= 99 and re.fullmatch(r"9+", str(_tidy(top))):
        hits = values == top
        rest = values[~hits]
        if len(rest) and hits.mean() <= SENTINEL_MAX_SHARE and top >= 10 * rest.max() and n >= RELATION_MIN_ROWS:
            return float(top), int(hits.sum()), f"ten times any other value ({_tidy(rest.max())})"
    return None


_CLASSES = [("[0-9]", set("0123456789")), ("[0-9a-f]", set("0123456789abcdef")),
            ("[0-9A-F]", set("0123456789ABCDEF")), ("[a-z]", set("abcdefghijklmnopqrstuvwxyz")),
            ("[A-Z]", set("ABCDEFGHIJKLMNOPQRSTUVWXYZ")), ("[a-z0-9]", set("abcdefghijklmnopqrstuvwxyz0123456789")),
            ("[A-Z0-9]", set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")),
            ("[A-Za-z0-9]", set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"))]


def _char_class(chars: set[str]) -> str:
    if len(chars) == 1:
        return re.escape(next(iter(chars)))
    for pattern, members in _CLASSES:
        if chars <= members:
            return pattern
    return r"[A-Za-z0-9_\-:.]"


def infer_pattern(values: pd.Series) -> str:
    """A regex that matches every id: per-position character classes when lengths agree."""
    lengths = values.str.len()
    if lengths.nunique() != 1:
        chars = set("".join(values))
        return f"{_char_class(chars) if len(chars) > 1 else re.escape(next(iter(chars)))}{{{lengths.min()},{lengths.max()}}}"
    columns = list(zip(*values.tolist()))
    classes = [_char_class(set(chars)) for chars in columns]
    parts: list[tuple[str, int]] = []
    for cls_ in classes:
        if parts and parts[-1][0] == cls_:
            parts[-1] = (cls_, parts[-1][1] + 1)
        else:
            parts.append((cls_, 1))
    return "".join(c if n == 1 else f"{c}{{{n}}}" for c, n in parts)


# ---- across columns -----------------------------------------------------------------------------
def infer_rules(df: pd.DataFrame, columns: list[Column]) -> tuple[list[Rule], list[str]]:
    """`a >= b` for numeric pairs of one unit that hold on every row yet would often fail for unrelated
    columns; and notes on pairs left out because their units differ.

    A pair whose shuffled version still holds on almost every row (price >= a 0-3 badge count) is implied
    by the two marginals and adds nothing but a constraint to fit. Two columns of different known units are
    never compared; where a unit is not known, only when their typical values are within a factor of ten.
    """
    numeric = [c for c in columns if (c.is_numeric and not c.derived or c.sortable) and df[c.name].nunique() > 2]
    rng = np.random.default_rng(0)
    found: list[Rule] = []
    notes: list[str] = []
    values = {c.name: c.as_numbers(df[c.name]) for c in numeric}
    for a in numeric:
        for b in numeric:
            if a.name == b.name or (a.type == "datetime") != (b.type == "datetime"):
                continue
            both = ~(np.isnan(values[a.name]) | np.isnan(values[b.name]))
            if both.sum() < RELATION_MIN_ROWS:
                continue
            x, y = values[a.name][both], values[b.name][both]
            if not (x >= y).all() or (x == y).all():
                continue
            if (x >= rng.permutation(y)).mean() > 1 - RULE_MIN_SHUFFLED_VIOLATIONS:
                continue
            if a.unit != b.unit and a.type != "datetime":
                if a.unit and b.unit:
                    notes.append(f"'{a.name} >= {b.name}' holds but compares {a.unit} with {b.unit}: not a rule")
                    continue
                if not _same_scale(x, y):
                    notes.append(f"'{a.name} >= {b.name}' holds but the columns' units are not known to agree: not a rule")
                    continue
            found.append(Rule(high=a.name, low=b.name))
    pairs = {(r.high, r.low) for r in found}
    names = {r.high for r in found} | {r.low for r in found}
    return [r for r in found if not any((r.high, m) in pairs and (m, r.low) in pairs for m in names)], notes


def _same_scale(x: np.ndarray, y: np.ndarray) -> bool:
    mx, my = np.median(np.abs(x)), np.median(np.abs(y))
    return mx > 0 and my > 0 and abs(math.log10(mx / my)) <= 1


# Candidate relations, tried in this order; a target takes the first that holds.
_FORMULAS = [
    ("[{a}]", 1),
    ("[{a}] * [{b}]", 2),
    ("[{a}] + [{b}]", 2),
    ("100 * (1 - [{a}] / [{b}])", 2),
    ("1 - [{a}] / [{b}]", 2),
    ("100 * [{a}] / [{b}]", 2),
    ("[{a}] - [{b}]", 2),
    ("[{a}] / [{b}]", 2),
]


def infer_derived(df: pd.DataFrame, columns: list[Column]) -> tuple[dict[str, str], list[str]]:
    """{column: formula} for numeric columns that a formula of two others gives on every row.

    A formula holds when it matches the column to within its rounding on RELATION_MIN_SHARE of the rows
    where all are present (and is missing exactly where the column is), and fails on more than
    RULE_MIN_SHUFFLED_VIOLATIONS of the rows when an input is shuffled. A derived column is computed from
    learned columns only, so a column used as an input is never derived itself; of two candidates the later
    column is derived.
    """
    numeric = [c for c in columns if c.is_numeric and df[c.name].nunique() > 2]
    notes = []
    if len(numeric) > MAX_RELATION_COLUMNS:
        notes.append(f"only the first {MAX_RELATION_COLUMNS} of {len(numeric)} numeric columns were searched for exact relations")
        numeric = numeric[:MAX_RELATION_COLUMNS]
    probe = df.sample(min(len(df), RELATION_PROBE_ROWS), random_state=0) if len(df) else df
    found: dict[str, str] = {}
    inputs: set[str] = set()
    rng = np.random.default_rng(0)
    for template, arity in _FORMULAS:
        for target in reversed(numeric):  # a later column is the one computed from earlier ones (a copy, a total)
            if target.name in found or target.name in inputs:
                continue
            for a in numeric:
                for b in numeric if arity == 2 else [a]:
                    names = {a.name, b.name}
                    if target.name in names or (arity == 2 and a.name == b.name) or names & set(found):
                        continue
                    if arity == 2 and ("+" in template or "*" in template.replace("100 *", "")) and a.name > b.name:
                        continue  # symmetric: try each pair once
                    formula = template.format(a=a.name.replace("]", ""), b=b.name.replace("]", ""))
                    if "]" in a.name or "]" in b.name:
                        continue  # a name with a bracket cannot be written in a formula
                    if _holds(probe, target, formula, rng) and _holds(df, target, formula, rng):
                        found[target.name] = formula
                        inputs |= names
                        break
                if target.name in found:
                    break
    return found, notes


def infer_sums(df: pd.DataFrame, columns: list[Column], found: dict[str, str]) -> dict[str, str]:
    """{column: formula} for a column that is the sum of three or more others (a badge count, a total of
    star counts) on RELATION_MIN_SHARE of the rows.

    Non-negative summands never exceed their sum, so only such columns are candidates. Terms are dropped
    while the sum does not match, and then while dropping one matches as well: every term kept is needed.
    """
    numeric = [c for c in columns if c.is_numeric and c.name not in found and df[c.name].nunique() > 1]
    numeric = numeric[:MAX_RELATION_COLUMNS]
    used = {n for f in found.values() for n in Expression.parse(f).columns}
    values = {c.name: pd.to_numeric(df[c.name], errors="coerce").to_numpy(float) for c in numeric}
    out: dict[str, str] = {}
    for target in reversed(numeric):
        if target.name in used or "]" in target.name:
            continue
        y = values[target.name]
        terms = []
        for c in numeric:
            x = values[c.name]
            both = ~np.isnan(x) & ~np.isnan(y)
            if (c.name != target.name and c.name not in out and "]" not in c.name and both.sum() >= RELATION_MIN_ROWS
                    and (x[both] >= 0).all() and (x[both] <= y[both]).all()):
                terms.append(c.name)
        while len(terms) >= MIN_SUM_TERMS and _sum_share(terms, values, y) < RELATION_MIN_SHARE:
            terms.pop(_best_drop(terms, values, y)[0])
        while len(terms) > MIN_SUM_TERMS:
            k, share = _best_drop(terms, values, y)
            if share < _sum_share(terms, values, y):
                break
            terms.pop(k)
        if len(terms) >= MIN_SUM_TERMS and _sum_share(terms, values, y) >= RELATION_MIN_SHARE:
            out[target.name] = " + ".join(f"[{n}]" for n in terms)
            used |= set(terms) | {target.name}
    return out


def _sum_share(terms: list[str], values: dict[str, np.ndarray], y: np.ndarray) -> float:
    total = np.sum([values[n] for n in terms], axis=0)
    return float(np.mean(np.isclose(total, y, rtol=0, atol=1e-6) | (np.isnan(total) & np.isnan(y))))


def _best_drop(terms: list[str], values: dict[str, np.ndarray], y: np.ndarray) -> tuple[int, float]:
    """The term whose removal brings the sum closest to the column, and the share that then matches."""
    shares = [_sum_share(terms[:k] + terms[k + 1:], values, y) for k in range(len(terms))]
    return int(np.argmax(shares)), max(shares)


def _holds(df: pd.DataFrame, target: Column, formula: str, rng: np.random.Generator) -> bool:
    expr = Expression.parse(formula)
    got = expr.evaluate(df)
    want = pd.to_numeric(df[target.name], errors="coerce").to_numpy(float)
    both = ~np.isnan(got) & ~np.isnan(want)
    if both.sum() < RELATION_MIN_ROWS or (np.isnan(got) != np.isnan(want)).mean() > 1 - RELATION_MIN_SHARE:
        return False
    tol = _tolerance(target, want[both])
    if np.mean(np.abs(got[both] - want[both]) <= tol) < RELATION_MIN_SHARE:
        return False
    shuffled = df.copy()
    last = expr.columns[-1]
    shuffled[last] = rng.permutation(shuffled[last].to_numpy())
    moved = expr.evaluate(shuffled)
    ok = ~np.isnan(moved) & ~np.isnan(want)
    return bool(ok.any()) and np.mean(np.abs(moved[ok] - want[ok]) <= _tolerance(target, want[ok])) < 1 - RULE_MIN_SHUFFLED_VIOLATIONS


def _tolerance(target: Column, values: np.ndarray) -> np.ndarray:
    """Within one step of the column's rounding (rounded or cut off), or 1e-6 relative without one."""
    step = 10.0 ** -(0 if target.type == "integer" else target.decimals) if (
        target.type == "integer" or target.decimals is not None) else 0.0
    return np.maximum(step, 1e-6 * np.abs(values)) + 1e-9


def _infer_conditioning(df: pd.DataFrame, columns: list[Column], rules: list[Rule]) -> list[Column]:
    """Condition each text column on a few informative categoricals, the main price and earlier text."""
    categorical = [
        c.name for c in columns
        if c.type == "categorical" and 2 <= df[c.name].nunique() <= MAX_CONDITION_CARDINALITY
    ][:MAX_INFERRED_CONDITIONS]
    numeric = [c for c in columns if c.is_numeric and df[c.name].nunique() > 2]
    money = [c.name for c in numeric if c.unit == "money"] or [c.name for c in numeric if "price" in c.name.lower()]
    lows = [r.low for r in rules if r.low in money]
    price = (lows or money or [c.name for c in numeric] or [None])[0]
    base = categorical + ([price] if price else [])
    out, earlier_text = [], []
    for col in columns:
        if col.type == "text":
            col = replace(col, conditioned_on=tuple(base + earlier_text))
            earlier_text.append(col.name)
        out.append(col)
    return out


def infer_schema(df: pd.DataFrame, name: str = "catalog") -> Inference:
    """A schema for `df`, with every decision and its reason."""
    if len(df) == 0 or len(df.columns) == 0:
        raise SchemaError("cannot infer a schema from an empty table; give a catalog with rows")
    pairs = [decide_column(str(n), df[n]) for n in df.columns]
    columns = [c for c, _ in pairs]
    decisions = [d for _, d in pairs]
    frame = df.copy()
    frame.columns = [str(c) for c in df.columns]
    derived, notes = infer_derived(frame, columns)
    derived |= infer_sums(frame, columns, derived)
    columns = [replace(c, derived=derived[c.name], values=None, endings=None) if c.name in derived else c for c in columns]
    decisions = [replace(d, reason=f"{derived[d.column]}: an exact relation of the data, computed after sampling")
                 if d.column in derived else d for d in decisions]
    rules, rule_notes = infer_rules(frame, columns)
    notes += rule_notes
    primary_key = next(
        (c.name for c in columns if c.type == "id" and not c.nullable and frame[c.name].is_unique), None
    )
    columns = _infer_conditioning(frame, columns, rules)
    schema = CatalogSchema(name=name, columns=tuple(columns), primary_key=primary_key, rules=tuple(rules))
    return Inference(schema, tuple(decisions), tuple(notes))
