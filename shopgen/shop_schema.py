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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from shopgen.errors import SchemaError
from shopgen.schema import CatalogSchema, read_schema_yaml

SHOP_KEYS = {"foreign_keys", "basket"}  # what a table's entry may hold beside a catalog schema's keys


@dataclass(frozen=True)
class ForeignKey:
    """`table.column` holds keys of `parent` (its primary key)."""

    table: str
    column: str
    parent: str

    def __str__(self) -> str:
        return f"{self.table}.{self.column} -> {self.parent}"


@dataclass(frozen=True)
class ShopSchema:
    name: str
    tables: tuple[CatalogSchema, ...]
    foreign_keys: tuple[ForeignKey, ...] = ()
    baskets: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # (table, column)

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
        tables, keys, baskets = [], [], []
        for name, spec in raw["tables"].items():
            if not isinstance(name, str) or not name:
                raise SchemaError(f"{source}: table name {name!r} must be text")
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
            body = {k: v for k, v in spec.items() if k not in SHOP_KEYS}
            tables.append(CatalogSchema.from_dict({**body, "name": name}, source=at))
        return cls(str(raw.get("name") or "shop"), tuple(tables), tuple(keys), tuple(baskets))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for t in self.tables:
            spec = {k: v for k, v in t.to_dict().items() if k != "name"}
            if self.keys_of(t.name):
                spec["foreign_keys"] = {fk.column: fk.parent for fk in self.keys_of(t.name)}
            if self.basket(t.name):
                spec["basket"] = self.basket(t.name)
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
        self._ordered()  # raises on a cycle
