"""Guess a shop's schema from a folder of tables: each table's columns, then its keys, foreign keys and baskets.

A foreign key is declared where every value of a column is a key of another table. Containment alone can be
chance: whole numbers (a quantity of 1..80) fit inside any table numbered 1..N. So a column is declared a
key from its values when its header also says so (it names the other table, or its key), or when its values
are codes (not plain numbers) that no chance explains: 20 or more distinct codes, all found among the
other table's keys; the second kind is marked doubtful. A column whose values fit but that neither test
supports is reported, not declared.

A rollup is a parent column equal, on every one of at least 20 parent rows (and not constant), to an
aggregate of its child rows: their count, a column's distinct count, sum, min, max, median or mean.

A basket column (an invoice, an order) is one whose equal values group a table's rows so that each group
belongs to one parent row (one customer): it is functionally tied to a foreign key, most rows share their
value with another row, and some parent has several groups (else it is only the parent's own label).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from shopgen.errors import SchemaError
from shopgen.inference import Inference, header_words, infer_schema
from shopgen.rollups import FILLS, aggregate, fill, key_strings
from shopgen.schema import CatalogSchema, Column
from shopgen.shop_schema import ForeignKey, Rollup, ShopSchema

KEY_WORDS = {"id", "code", "key", "no", "number", "num", "nr", "sku", "ref"}
BASKET_WORDS = {"order", "invoice", "basket", "transaction", "session", "cart", "receipt", "ticket", "purchase"}
MIN_CODES = 20  # distinct codes below which containment in another table's keys could be chance
MIN_SHARED_ROWS = 0.5  # a basket column: at least this share of rows share their value with another row
KEYABLE = ("id", "integer", "categorical")  # types a key column can have been given by the per-column pass
MIN_ROLLUP_ROWS = 20  # parent rows below which an aggregate could match a column by chance
# tried in this order; the first that matches every parent row is declared
ROLLUP_FUNCS = ("count", "count_distinct", "sum", "min", "max", "median", "mean")


@dataclass(frozen=True)
class KeyDecision:
    """One key, foreign key or basket, why, and whether a reader should check it."""

    table: str
    column: str
    kind: str  # "primary key", "foreign key", "basket", "not a key"
    reason: str
    doubtful: bool = False


@dataclass(frozen=True)
class ShopInference:
    schema: ShopSchema
    tables: dict[str, Inference]
    keys: tuple[KeyDecision, ...]

    def table(self, explain: bool = False) -> str:
        """Each table's column decisions, then the keys, '?' on the doubtful ones."""
        lines = []
        for name, found in self.tables.items():
            lines += [f"table {name}", *("  " + line for line in found.table(explain).splitlines()), ""]
        width = max((len(f"{k.table}.{k.column}") for k in self.keys), default=0)
        lines.append("keys")
        for k in self.keys:
            lines.append(f"{'?' if k.doubtful else ' '} {f'{k.table}.{k.column}':<{width}}  {k.kind:<11}  {k.reason}")
        if not self.keys:
            lines.append("  none found: the tables are unrelated (declare foreign_keys in the schema if they are not)")
        if any(k.doubtful for k in self.keys):
            lines.append("? marks a doubtful key: check it, and edit foreign_keys or basket in the schema if it is wrong")
        return "\n".join(lines)


def _names(column: str, table: str, key: str) -> bool:
    """Whether a column's header points at `table`: its key's name (alone, or with a role: buyer_person_id for
    person_id, when the key says more than 'id'), or the table's name (singular or not)."""
    words = {w.rstrip("s") for w in header_words(column)}
    key_words = {w.rstrip("s") for w in header_words(key)}
    if column.lower() == key.lower() or words == key_words or (key_words - KEY_WORDS and key_words <= words):
        return True
    return bool(words & {w.rstrip("s") for w in header_words(table)})


def _reaches(links: list[ForeignKey], start: str, goal: str) -> bool:
    """Whether `start` already points, through the links, at `goal` (a new goal -> start link would close a cycle)."""
    seen, todo = set(), [start]
    while todo:
        table = todo.pop()
        if table == goal:
            return True
        seen.add(table)
        todo += [fk.parent for fk in links if fk.table == table and fk.parent not in seen]
    return False


def _is_codes(keys: pd.Series) -> bool:
    return not keys.str.fullmatch(r"-?\d+").all()


def _primary_key(schema: CatalogSchema, df: pd.DataFrame) -> str | None:
    if schema.primary_key:
        return schema.primary_key
    for col in schema.columns:  # a unique, always-set column of a key's kind, not typed id by its own pass
        if col.type in KEYABLE and not col.nullable and len(df) > 1 and df[col.name].is_unique:
            return col.name
    return None


def infer_shop(frames: dict[str, pd.DataFrame], name: str = "shop") -> ShopInference:
    """A shop schema for these tables (name -> frame), with every decision and its reason."""
    if not frames:
        raise SchemaError("no tables to infer a shop from; give a folder of CSV or Parquet files")
    found = {t: infer_schema(df, name=t) for t, df in frames.items()}
    schemas = {t: f.schema for t, f in found.items()}
    keys: list[KeyDecision] = []
    primary = {t: _primary_key(schemas[t], frames[t]) for t in frames}
    key_sets = {t: set(key_strings(frames[t][k])) for t, k in primary.items() if k}
    links: list[ForeignKey] = []
    for child, df in frames.items():
        for col in schemas[child].columns:
            if col.name == primary[child] or col.type not in KEYABLE:
                continue
            values = key_strings(df[col.name])
            if values.empty:
                continue
            distinct = set(values)
            fits = [p for p, keys_ in key_sets.items() if p != child and distinct <= keys_]
            if not fits:
                continue
            named = [p for p in fits if _names(col.name, p, primary[p])]
            codes = _is_codes(pd.Series(sorted(distinct))) and len(distinct) >= MIN_CODES
            what = f"all {len(values):,} values ({len(distinct):,} distinct) are keys of"
            if len(named) == 1 or (not named and len(fits) == 1 and codes):
                parent = named[0] if named else fits[0]
                if _reaches(links, parent, child):
                    keys.append(KeyDecision(child, col.name, "not a key", f"{what} {parent}, which already points "
                                            f"back at {child}: declare the one direction that holds", True))
                    continue
                links.append(ForeignKey(child, col.name, parent))
                why = "its name says so" if named else f"codes, not numbers, and {len(distinct):,} of them: not chance"
                keys.append(KeyDecision(child, col.name, "foreign key",
                                        f"-> {parent}.{primary[parent]}: {what} {parent}; {why}", doubtful=not named))
            else:
                options = named or fits
                keys.append(KeyDecision(child, col.name, "not a key",
                                        f"{what} {' and '.join(options)}, but "
                                        + ("its name fits several" if len(named) > 1 else
                                           "its name does not say so, and whole numbers or a few codes fit by chance")
                                        + "; declare it under foreign_keys if it is one", True))
    pointed = {fk.parent for fk in links}
    keys[:0] = [KeyDecision(t, k, "primary key", "every value distinct and set" + (
        ", and other tables point at it" if t in pointed else "")) for t, k in primary.items() if k]
    baskets = []
    for t, df in frames.items():
        decision = _basket(t, df, schemas[t], primary[t], [fk for fk in links if fk.table == t])
        if decision is not None:
            keys.append(decision)
            baskets.append((t, decision.column))
    rollups = []
    for fk in links:
        if sum(f.table == fk.table and f.parent == fk.parent for f in links) > 1:
            continue  # two keys to one parent (a buyer and a seller): which rows a total sums is not one thing
        taken = {f.column for f in links} | {c for _, c in baskets} | {k for k in primary.values() if k}
        for rollup, reason in _rollups(frames, schemas, fk, primary[fk.parent], taken):
            if not any(r.table == rollup.table and r.column == rollup.column for r in rollups):
                rollups.append(rollup)
                keys.append(KeyDecision(rollup.table, rollup.column, "rollup", reason))
    tables = []
    for t, schema in schemas.items():
        as_ids = {fk.column for fk in links if fk.table == t} | {c for b, c in baskets if b == t}
        if primary[t] and t in pointed:
            as_ids.add(primary[t])
        schema = _with_ids(schema, as_ids, primary[t] if primary[t] in as_ids else schema.primary_key)
        tables.append(_open_ranges(schema, [r for r in rollups if r.table == t]))
        found[t] = replace(found[t], schema=tables[-1], decisions=tuple(
            replace(d, kind="id", reason="a key of the shop (below)", doubtful=False, evidence={}) if d.column in as_ids
            else d for d in found[t].decisions))
    shop = ShopSchema(name, tuple(tables), tuple(links), tuple(baskets), tuple(rollups))
    return ShopInference(shop, found, tuple(keys))


def _basket(table: str, df: pd.DataFrame, schema: CatalogSchema, primary: str | None,
            links: list[ForeignKey]) -> KeyDecision | None:
    if not links:
        return None
    taken = {primary} | {fk.column for fk in links}
    candidates = []
    for col in schema.columns:
        if col.name in taken or col.type not in KEYABLE or col.nullable:
            continue
        sizes = df[col.name].value_counts()
        if float(sizes[sizes >= 2].sum()) < MIN_SHARED_ROWS * len(df):
            continue
        for fk in links:
            owners = df.groupby(col.name, observed=True)[fk.column].nunique(dropna=False)
            if owners.max() == 1 and len(sizes) > df[fk.column].nunique():
                named = bool({w.rstrip("s") for w in header_words(col.name)} & BASKET_WORDS)
                candidates.append((named, len(sizes), col.name, fk, sizes))
                break
    if not candidates:
        return None
    named, groups, column, fk, sizes = max(candidates, key=lambda c: (c[0], c[1]))
    rivals = [c[2] for c in candidates if c[0] == named and c[2] != column]
    fixed = [c for c in df.columns if c not in (column, fk.column)
             and df.groupby(column, observed=True)[c].nunique(dropna=False).max() == 1]
    reason = (f"{groups:,} baskets of {int(sizes.min())}-{int(sizes.max())} rows (median {int(sizes.median())}), each "
              f"belonging to one {fk.column}" + ("; named like one" if named else "; its name does not say basket or order")
              + (f"; the same within a basket: {', '.join(map(str, fixed))}" if fixed else ""))
    if rivals:
        reason += f"; {', '.join(rivals)} would group rows as well"
    return KeyDecision(table, column, "basket", reason, doubtful=not named or bool(rivals))


def _rollups(frames: dict[str, pd.DataFrame], schemas: dict[str, CatalogSchema], fk: ForeignKey, key: str,
             keys: set[str]) -> list[tuple[Rollup, str]]:
    """The parent's columns that equal an aggregate of the child rows pointing at them, on every row."""
    parent, child = schemas[fk.parent], schemas[fk.table]
    frame = frames[fk.parent]
    if len(frame) < MIN_ROLLUP_ROWS:
        return []
    out = []
    cache: dict[tuple[str, str | None], pd.Series] = {}
    for target in parent.columns:
        if target.name in keys or target.type not in ("integer", "numeric", "datetime") or frame[target.name].nunique() < 2:
            continue
        for func in ROLLUP_FUNCS:
            sources = [None] if func == "count" else [
                c for c in child.columns if c.name != fk.column and _fits(func, c, target)]
            match = next((c for c in sources if _equal(
                fill(frame[key], cache.setdefault((func, c and c.name), aggregate(frames[fk.table], fk.column, func, c)),
                     func, target), frame[target.name], target)), False)
            if match is not False:
                rollup = Rollup(fk.parent, target.name, func, fk.table, match.name if match else None)
                out.append((rollup, f"= {rollup} on all {len(frame):,} rows: computed from the generated "
                                    f"{fk.table} rows, so the two always agree"))
                break
    return out


def _fits(func: str, source: Column, target: Column) -> bool:
    if func == "count_distinct":
        return target.type == "integer" and source.type in ("id", "categorical", "integer")
    if source.type == "datetime":
        return target.type == "datetime" and func in ("min", "max")
    return source.is_numeric and target.type != "datetime" and (target.type == "numeric" or func in ("sum", "min", "max"))


def _equal(found: pd.Series, real: pd.Series, target: Column) -> bool:
    if target.type == "datetime":
        return bool((target.parse_moments(found) == target.parse_moments(real)).all())
    a, b = pd.to_numeric(found, errors="coerce").to_numpy(float), pd.to_numeric(real, errors="coerce").to_numpy(float)
    tolerance = 0.5 * 10.0 ** -target.decimals if target.decimals is not None else 1e-9 * np.maximum(np.abs(b), 1)
    return bool(np.all((np.abs(a - b) <= tolerance) | (np.isnan(a) & np.isnan(b))))


def _open_ranges(schema: CatalogSchema, rollups: list[Rollup]) -> CatalogSchema:
    """Rollup columns without the real table's range and value set: they are computed from however many lines a
    sample has (fewer customers sell fewer units), so the real extremes are not bounds of theirs. A count
    keeps its floor of 0. An extreme or a middle of no lines (a product nobody bought in the sample) is
    missing, so those columns may be empty even where every real row had lines."""
    if not rollups:
        return schema
    funcs = {r.column: r.func for r in rollups}
    return schema.with_columns(**{
        name: replace(schema.column(name), min=0 if func in ("count", "count_distinct") else None, max=None, values=None,
                      nullable=schema.column(name).nullable or func not in FILLS)
        for name, func in funcs.items()})


def _with_ids(schema: CatalogSchema, as_ids: set[str], primary: str | None) -> CatalogSchema:
    """The table's schema with these columns as plain identifiers: no rule, derived formula or text condition
    names them any more (keys are linked, not learned as numbers)."""
    if not as_ids and primary == schema.primary_key:
        return schema
    columns = []
    for col in schema.columns:
        if col.name in as_ids:
            columns.append(Column(col.name, "id", nullable=col.nullable))
            continue
        uses = set(col.expression.columns) if col.expression is not None else set()
        col = replace(col, conditioned_on=tuple(c for c in col.conditioned_on if c not in as_ids))
        columns.append(replace(col, derived=None) if uses & as_ids else col)
    rules = tuple(r for r in schema.rules if not {r.high, r.low} & as_ids)
    return replace(schema, columns=tuple(columns), rules=rules, primary_key=primary)
