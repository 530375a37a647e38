"""A shop's schema: several tables, each a `CatalogSchema`, tied by foreign keys, with baskets.

A foreign key names a column of one table whose every value is a key of another table (a purchase line's
customer, its product); the parent's primary key is what it points at. A basket is the column of a table
whose equal values make one unit of the shop's behaviour (an invoice, an order): its lines belong to one
parent row, as an invoice belongs to one customer. The validation suite, the DDL (PRIMARY and FOREIGN KEY
constraints, tables created in dependency order) and the dtypes of every table come from this one file:

    name: online_retail
    tables:
      customers: {primary_key: CustomerID, columns: {...}}
      products: {primary_key: StockCode, columns: {...}}
      interactions:
        columns: {...}
        foreign_keys: {CustomerID: customers, StockCode: products}
        basket: InvoiceNo
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from shopgen.errors import SchemaError
from shopgen.schema import CatalogSchema, read_schema_yaml

SHOP_KEYS = {"foreign_keys", "basket", "rollups"}  # what a table's entry may hold beside a catalog schema's keys
AGGREGATES = ("count", "count_distinct", "sum", "min", "max", "median", "mean")
TABLE_NAME = re.compile(r"\w[\w\-. ]{0,63}")  # a file name in a folder of tables, never a path
_ROLLUP_RE = re.compile(r"\s*(\w+)\s*\((.+)\)\s*")


@dataclass(frozen=True)
class ForeignKey:
    """`table.column` holds keys of `parent` (its primary key)."""

    table: str
    column: str
    parent: str

    def __str__(self) -> str:
        return f"{self.table}.{self.column} -> {self.parent}"


@dataclass(frozen=True)
class Rollup:
    """`table.column` is `func` of the child table's rows that point at it: `sum(interactions.Quantity)`,
    `count(interactions)` (its rows), `count_distinct(interactions.InvoiceNo)`, `min(interactions.InvoiceDate)`."""

    table: str
    column: str
    func: str
    child: str
    child_column: str | None = None

    def __str__(self) -> str:
        return f"{self.func}({self.child}{'.' + self.child_column if self.child_column else ''})"

    @classmethod
    def parse(cls, table: str, column: str, text: str, tables: list[str], source: str) -> Rollup:
        match = _ROLLUP_RE.fullmatch(str(text))
        inner = match.group(2).strip() if match else ""
        child = next((t for t in sorted(tables, key=len, reverse=True) if inner == t or inner.startswith(t + ".")), None)
        if not match or match.group(1) not in AGGREGATES or child is None:
            raise SchemaError(f"{source}: rollup {column}: {text!r} is not of the form func(table.column) with func one "
                              f"of {', '.join(AGGREGATES)} and table one of {tables}; e.g. sum(interactions.Quantity)")
        return cls(table, column, match.group(1), child, inner[len(child) + 1:] or None)


@dataclass(frozen=True)
class ShopSchema:
    name: str
    tables: tuple[CatalogSchema, ...]
    foreign_keys: tuple[ForeignKey, ...] = ()
    baskets: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # (table, column)
    rollups: tuple[Rollup, ...] = ()

    def __post_init__(self) -> None:
        self._check()

    # ---- lookups -------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tables]

    def table(self, name: str) -> CatalogSchema:
        for t in self.tables:
            if t.name == name:
                return t
        raise SchemaError(f"shop {self.name!r} has no table {name!r}; tables are {self.names}")

    def keys_of(self, table: str) -> list[ForeignKey]:
        """The foreign keys a table holds, in declaration order."""
        return [fk for fk in self.foreign_keys if fk.table == table]

    def rollups_of(self, table: str) -> list[Rollup]:
        return [r for r in self.rollups if r.table == table]

    def basket(self, table: str) -> str | None:
        return next((column for t, column in self.baskets if t == table), None)

    @property
    def order(self) -> list[str]:
        """Tables with every parent before its children (created and loaded in this order, dropped in reverse);
        among tables free at the same time, declaration order."""
        return self._ordered()

    def _ordered(self) -> list[str]:
        done: list[str] = []
        while len(done) < len(self.tables):
            ready = [t for t in self.names if t not in done
                     and all(fk.parent in done or fk.parent == t for fk in self.keys_of(t))]
            if not ready:
                raise SchemaError(f"shop {self.name!r}: the foreign keys among {sorted(set(self.names) - set(done))} form a cycle")
            done.append(ready[0])
        return done

    # ---- (de)serialisation ---------------------------------------------------------------------
    @classmethod
    def from_dict(cls, raw: Any, source: str = "schema") -> ShopSchema:
        if not isinstance(raw, dict) or not isinstance(raw.get("tables"), dict) or not raw["tables"]:
            raise SchemaError(f"{source}: a shop schema is a mapping with 'name' and 'tables' (table name -> its schema)")
        unknown = set(raw) - {"name", "tables"}
        if unknown:
            raise SchemaError(f"{source}: unknown top-level key(s) {sorted(map(str, unknown))}; a shop schema has name and tables")
        tables, keys, baskets, rollups = [], [], [], []
        names = [str(n) for n in raw["tables"]]
        for name, spec in raw["tables"].items():
            if not isinstance(name, str) or not TABLE_NAME.fullmatch(name):
                raise SchemaError(f"{source}: table name {name!r} must be 1-64 letters, digits, '_', '-', '.' or spaces, "
                                  "starting with a letter, digit or '_' (it names the table's file)")
            if not isinstance(spec, dict):
                raise SchemaError(f"{source}: table {name!r} must be a mapping with 'columns'")
            at = f"{source}, table {name!r}"
            links = spec.get("foreign_keys") or {}
            if not isinstance(links, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in links.items()):
                raise SchemaError(f"{at}: foreign_keys must map a column to the table it points at, like {{CustomerID: customers}}")
            keys += [ForeignKey(name, column, parent) for column, parent in links.items()]
            basket = spec.get("basket")
            if basket is not None:
                if not isinstance(basket, str):
                    raise SchemaError(f"{at}: basket must be one column's name, like InvoiceNo")
                baskets.append((name, basket))
            sums = spec.get("rollups") or {}
            if not isinstance(sums, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in sums.items()):
                raise SchemaError(f"{at}: rollups must map a column to what it sums up, like {{units_sold: sum(lines.qty)}}")
            rollups += [Rollup.parse(name, column, text, names, at) for column, text in sums.items()]
            body = {k: v for k, v in spec.items() if k not in SHOP_KEYS}
            tables.append(CatalogSchema.from_dict({**body, "name": name}, source=at))
        return cls(str(raw.get("name") or "shop"), tuple(tables), tuple(keys), tuple(baskets), tuple(rollups))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for t in self.tables:
            spec = {k: v for k, v in t.to_dict().items() if k != "name"}
            if self.keys_of(t.name):
                spec["foreign_keys"] = {fk.column: fk.parent for fk in self.keys_of(t.name)}
            if self.basket(t.name):
                spec["basket"] = self.basket(t.name)
            if self.rollups_of(t.name):
                spec["rollups"] = {r.column: str(r) for r in self.rollups_of(t.name)}
            out[t.name] = spec
        return {"name": self.name, "tables": out}

    @classmethod
    def from_yaml(cls, path: str | Path) -> ShopSchema:
        return cls.from_dict(read_schema_yaml(path), source=str(path))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, width=120)

    # ---- checks --------------------------------------------------------------------------------
    def _check(self) -> None:
        where = f"shop {self.name!r}"
        if len(set(self.names)) != len(self.names):
            raise SchemaError(f"{where}: two tables share a name")
        seen = set()
        for fk in self.foreign_keys:
            at = f"{where}: foreign key {fk}"
            child = self.table(fk.table)
            if fk.parent not in self.names:
                raise SchemaError(f"{at} points at no table; tables are {self.names}")
            parent = self.table(fk.parent)
            if fk.column not in child.names:
                raise SchemaError(f"{at}: table {fk.table!r} has no column {fk.column!r}")
            if (fk.table, fk.column) in seen:
                raise SchemaError(f"{at}: the column already points at another table")
            seen.add((fk.table, fk.column))
            if not parent.primary_key:
                raise SchemaError(f"{at}: table {fk.parent!r} has no primary_key for it to point at; declare one")
            for table, column in ((child, fk.column), (parent, parent.primary_key)):
                if table.column(column).type != "id":
                    raise SchemaError(f"{at}: {table.name}.{column} is {table.column(column).type}, but keys are "
                                      "identifiers: make its type id")
            if fk.parent == fk.table:
                raise SchemaError(f"{at}: a table pointing at itself (a tree of rows) is not supported; drop the key")
        for table, column in self.baskets:
            at = f"{where}: basket {table}.{column}"
            t = self.table(table)
            if column not in t.names:
                raise SchemaError(f"{at}: table {table!r} has no column {column!r}")
            if t.column(column).type != "id" or column == t.primary_key:
                raise SchemaError(f"{at}: a basket column is an identifier (type id) that several rows share, not the table's key")
            if not self.keys_of(table):
                raise SchemaError(f"{at}: a basket belongs to a parent row (a customer); declare the table's foreign_keys")
        if len({t for t, _ in self.baskets}) != len(self.baskets):
            raise SchemaError(f"{where}: a table has one basket column at most")
        for r in self.rollups:
            self._check_rollup(r, f"{where}: rollup {r.table}.{r.column} = {r}")
        self._ordered()  # raises on a cycle

    def _check_rollup(self, r: Rollup, at: str) -> None:
        table = self.table(r.table)
        if r.column not in table.names or r.column == table.primary_key:
            raise SchemaError(f"{at}: table {r.table!r} has no column {r.column!r} to compute (its key is not one)")
        target = table.column(r.column)
        links = [fk for fk in self.keys_of(r.child) if fk.parent == r.table]
        if len(links) != 1:
            raise SchemaError(f"{at}: {r.child} must point at {r.table} through exactly one foreign key, not {len(links)}")
        if r.func == "count":
            if r.child_column is not None:
                raise SchemaError(f"{at}: count counts rows: write count({r.child}), or count_distinct({r.child}.column)")
        else:
            if r.child_column is None or r.child_column not in self.table(r.child).names:
                raise SchemaError(f"{at}: name the column of {r.child} it is computed from, like {r.func}({r.child}.column)")
            source = self.table(r.child).column(r.child_column)
            ordered = source.is_numeric or (source.type == "datetime" and r.func in ("min", "max"))
            if r.func != "count_distinct" and not ordered:
                raise SchemaError(f"{at}: {r.func} needs a numeric column (or a datetime for min and max), and "
                                  f"{r.child}.{r.child_column} is {source.type}")
            if source.type == "datetime" and target.type != "datetime":
                raise SchemaError(f"{at}: the earliest or latest moment goes in a datetime column, not a {target.type} one")
        if target.type not in ("integer", "numeric", "datetime") or (target.type == "datetime") != (
                r.func in ("min", "max") and r.child_column is not None and self.table(r.child).column(r.child_column).type == "datetime"):
            raise SchemaError(f"{at}: {r.column} is {target.type}, which {r.func} of {r.child} rows cannot fill")
        if r.func in ("count", "count_distinct") and target.type != "integer":
            raise SchemaError(f"{at}: a count goes in an integer column, and {r.column} is {target.type}")


def read_any_schema(path: str | Path) -> CatalogSchema | ShopSchema:
    """A YAML schema file: a shop's when it names tables, else one catalog's."""
    raw = read_schema_yaml(path)
    if isinstance(raw, dict) and "tables" in raw:
        return ShopSchema.from_dict(raw, source=str(path))
    return CatalogSchema.from_dict(raw, source=str(path))
