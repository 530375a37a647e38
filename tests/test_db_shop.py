"""Seeding a whole shop: its tables made parents first with PRIMARY and FOREIGN KEY constraints, all or nothing.

Runs against the same servers as test_db.py, through its `db` fixture (an unreachable server skips locally
and fails in CI). Each test names its tables with a random suffix, registered child first so that the
fixture drops them in an order the foreign keys allow.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
import test_db
import yaml
from test_db import Db

from shopgen.db import check_shop, write_shop
from shopgen.errors import OptionError, ShopgenError
from shopgen.shop_schema import ShopSchema

db = test_db.db  # the fixture: SQLite, PostgreSQL and MariaDB in turn

# The lines come first here; the tables are still made (and filled) parents first.
SHOP_YAML = """
name: tiny_shop
tables:
  LINES:
    primary_key: line_id
    columns:
      line_id: {type: id, pattern: "L[0-9]{5}"}
      customer_id: {type: id}
      product_id: {type: id}
      quantity: {type: integer, min: 1, max: 99}
    foreign_keys: {customer_id: CUSTOMERS, product_id: PRODUCTS}
  CUSTOMERS:
    primary_key: id
    columns:
      id: {type: id, pattern: "C[0-9]{4}"}
      country: {type: categorical, values: [UK, FR, DE]}
  PRODUCTS:
    primary_key: id
    columns:
      id: {type: id, pattern: "P[0-9]{4}"}
      price: {type: numeric, decimals: 2, min: 0}
"""


class Shop:
    """The shop's schema under this test's table names, and frames that fit it."""

    def __init__(self, db: Db) -> None:
        self.lines, self.customers, self.products = (db.table(f"{t}_{{}}") for t in ("lines", "customers", "products"))
        text = SHOP_YAML.replace("LINES", self.lines).replace("CUSTOMERS", self.customers).replace("PRODUCTS", self.products)
        self.schema = ShopSchema.from_dict(yaml.safe_load(text))
        self.names = [self.customers, self.products, self.lines]  # parents first

    def frames(self, customers: int = 5, products: int = 4, lines: int = 12, start: int = 0) -> dict[str, pd.DataFrame]:
        """`start` shifts every key, so a second shop shares none with the first."""
        cids = [f"C{start + i:04d}" for i in range(customers)]
        pids = [f"P{start + i:04d}" for i in range(products)]
        return {
            self.customers: pd.DataFrame({"id": cids, "country": [["UK", "FR", "DE"][i % 3] for i in range(customers)]}),
            self.products: pd.DataFrame({"id": pids, "price": [round(1.25 + i, 2) for i in range(products)]}),
            self.lines: pd.DataFrame({"line_id": [f"L{start + i:05d}" for i in range(lines)],
                                      "customer_id": [cids[i % customers] for i in range(lines)],
                                      "product_id": [pids[(i * 3) % products] for i in range(lines)],
                                      "quantity": [1 + i % 5 for i in range(lines)]}),
        }

    def contents(self, db: Db) -> dict[str, list[tuple]]:
        return {name: [tuple(map(str, row)) for row in db.content(name)] for name in self.names}


def stages(db: Db) -> set[str]:
    """Staging tables (MariaDB's and PostgreSQL's loads make them under this prefix; SQLite's none, and
    looking would make the file)."""
    if db.kind == "sqlite":
        return set()
    return {n for n in sa.inspect(db.engine).get_table_names() if n.startswith("_shopgen_")}


def foreign_keys(db: Db, table: str) -> set[tuple[str, str, str]]:
    """(column, parent table, parent column) of each FOREIGN KEY the database holds for `table`."""
    return {(fk["constrained_columns"][0], fk["referred_table"], fk["referred_columns"][0])
            for fk in sa.inspect(db.engine).get_foreign_keys(table)}


def key_columns(db: Db, table: str) -> list[str]:
    """The primary key's columns; on SQLite, the unique index that stands for it."""
    inspector = sa.inspect(db.engine)
    if db.kind != "sqlite":
        return inspector.get_pk_constraint(table)["constrained_columns"]
    return next((ix["column_names"] for ix in inspector.get_indexes(table) if ix["unique"]), [])


def checked(db: Db, sql: str, **params) -> None:
    """A statement with the foreign keys enforced (SQLite checks them where a connection asks)."""
    with db.engine.begin() as con:
        if db.kind == "sqlite":
            con.exec_driver_sql("PRAGMA foreign_keys = ON")
        con.execute(sa.text(sql), params)


def insert(db: Db, table: str, **row) -> None:
    checked(db, f"INSERT INTO {db.q(table)} ({', '.join(map(db.q, row))}) VALUES ({', '.join(':' + k for k in row)})", **row)


def assert_keys(db: Db, shop: Shop) -> None:
    """Each table has its key, the lines their two FOREIGN KEYs on the parents' real names."""
    assert all(key_columns(db, name) == [key] for name, key in
               ((shop.customers, "id"), (shop.products, "id"), (shop.lines, "line_id")))
    assert foreign_keys(db, shop.lines) == {("customer_id", shop.customers, "id"), ("product_id", shop.products, "id")}
    assert foreign_keys(db, shop.customers) == foreign_keys(db, shop.products) == set()
    if db.kind == "mysql":  # InnoDB's own record: a foreign key of a renamed staging table follows its parent's rename
        pointed = db.rows("SELECT referenced_table_name FROM information_schema.referential_constraints "
                          "WHERE constraint_schema = DATABASE() AND table_name = :t", t=shop.lines)
        assert sorted(r[0] for r in pointed) == sorted([shop.customers, shop.products])


def frames_then(frame: pd.DataFrame, error: Exception) -> Iterator[pd.DataFrame]:
    """The frame in two parts, then a failure: a generator that breaks after rows went in."""
    yield frame.iloc[:5]
    yield frame.iloc[5:]
    raise error


# ---- a seeded shop --------------------------------------------------------------------------------
def test_a_shop_is_seeded_with_its_keys_declared_and_enforced(db):
    shop = Shop(db)
    frames = shop.frames()
    before = stages(db)
    loaded = write_shop(frames, db.url, shop.schema, batch_size=4, show_progress=True)
    assert [(x.table, x.rows) for x in loaded] == [(name, len(frames[name])) for name in shop.names]
    assert all(db.count(name) == len(frames[name]) for name in shop.names)
    lines = db.content(shop.lines)
    assert [r[:3] for r in lines] == list(frames[shop.lines][["line_id", "customer_id", "product_id"]].itertuples(index=False, name=None))
    assert_keys(db, shop)
    assert stages(db) <= before
    insert(db, shop.lines, line_id="L90000", customer_id="C0001", product_id="P0002", quantity=1)
    with pytest.raises(sa.exc.IntegrityError):  # a line whose customer does not exist
        insert(db, shop.lines, line_id="L90001", customer_id="C9999", product_id="P0002", quantity=1)
    with pytest.raises(sa.exc.IntegrityError):  # a second customer with the same key
        insert(db, shop.customers, id="C0001", country="FR")
    with pytest.raises(sa.exc.IntegrityError):  # a customer some lines point at
        checked(db, f"DELETE FROM {db.q(shop.customers)} WHERE id = 'C0001'")
    assert db.count(shop.lines) == 13 and db.count(shop.customers) == 5


# ---- all or nothing --------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["fresh", "replace"])
def test_a_dangling_foreign_key_writes_nothing(db, mode):
    shop = Shop(db)
    if mode == "replace":
        write_shop(shop.frames(), db.url, shop.schema)
    before, staged = (shop.contents(db) if mode == "replace" else None), stages(db)
    bad = shop.frames(start=500)
    bad[shop.lines].loc[6, "customer_id"] = "C9999"  # the 7th line's customer is no customer
    with pytest.raises(ShopgenError, match="nothing was written") as caught:
        write_shop(bad, db.url, shop.schema, if_exists="replace" if mode == "replace" else "fail", batch_size=4)
    message = str(caught.value)
    assert "\n" not in message and f"table {shop.lines!r}" in message and "customer_id" in message, message
    assert "_shopgen_" not in message, message  # staging names are told as the tables they stand for
    if mode == "fresh":
        if db.kind == "sqlite":  # the file the load made goes again
            assert not Path(db.engine.url.database).exists()
        assert not any(db.exists(name) for name in shop.names)
    else:
        assert shop.contents(db) == before
        assert_keys(db, shop)
    assert stages(db) <= staged


@pytest.mark.parametrize("mode", ["fresh", "replace"])
@pytest.mark.parametrize("how", ["duplicate key", "generator fails"])
def test_a_failure_in_the_last_table_changes_nothing(db, mode, how):
    """The parents are in (and their keys built) when the last table fails: none of it stays."""
    shop = Shop(db)
    if mode == "replace":
        write_shop(shop.frames(), db.url, shop.schema)
    before, staged = (shop.contents(db) if mode == "replace" else None), stages(db)
    frames: dict = shop.frames(start=500)
    lines = frames[shop.lines]
    if how == "duplicate key":
        lines.loc[10, "line_id"] = lines.loc[2, "line_id"]
        frames[shop.lines] = iter([lines.iloc[:6], lines.iloc[6:]])
        expected, match = ShopgenError, f"loading table {shop.lines!r}.*nothing was written"
    else:
        frames[shop.lines] = frames_then(lines, RuntimeError("the generator broke"))
        expected, match = RuntimeError, "the generator broke"
    with pytest.raises(expected, match=match):
        write_shop(frames, db.url, shop.schema, if_exists="replace" if mode == "replace" else "fail", batch_size=4)
    if mode == "fresh":
        assert not any(db.exists(name) for name in shop.names)
    else:
        assert shop.contents(db) == before
    assert stages(db) <= staged  # MariaDB: every staging table dropped again; elsewhere none is made
    write_shop(shop.frames(start=700), db.url, shop.schema, if_exists="replace")  # nothing half-made is in the way
    assert db.count(shop.lines) == 12


# ---- if_exists -------------------------------------------------------------------------------------
def test_if_exists_for_a_shop(db):
    shop = Shop(db)
    url = db.url
    check_shop(url, shop.schema)  # nothing there yet
    if db.kind == "sqlite":
        assert not Path(db.engine.url.database).exists()  # the check made no file
    first = shop.frames()
    write_shop(first, url, shop.schema)
    before = shop.contents(db)

    pulled = []

    def generated() -> Iterator[pd.DataFrame]:
        pulled.append(True)
        yield first[shop.lines]

    # fail (the default) refuses before a row is generated, naming the tables already there
    with pytest.raises(ShopgenError, match="already exist.*--if-exists replace") as caught:
        check_shop(url, shop.schema)
    assert all(name in str(caught.value) for name in shop.names)
    with pytest.raises(ShopgenError, match="already exist"):
        write_shop({**first, shop.lines: generated()}, url, shop.schema)
    assert not pulled and shop.contents(db) == before

    # append is refused for a shop with one line that says why, before connecting
    for attempt in (lambda: check_shop(url, shop.schema, "append"),
                    lambda: write_shop({**first, shop.lines: generated()}, url, shop.schema, if_exists="append")):
        with pytest.raises(OptionError, match="'append' is refused for a shop: its new keys would collide.*use replace") as caught:
            attempt()
        assert "\n" not in str(caught.value)
    with pytest.raises(OptionError, match="unknown"):
        check_shop(url, shop.schema, "sometimes")
    assert not pulled and shop.contents(db) == before

    # frames that do not match the shop's tables
    with pytest.raises(ShopgenError, match=rf"table\(s\) \[{shop.lines!r}\] have none"):
        write_shop({k: v for k, v in first.items() if k != shop.lines}, url, shop.schema, if_exists="replace")

    # replace swaps every table together, keys and all
    check_shop(url, shop.schema, "replace")
    second = shop.frames(customers=3, products=2, lines=5, start=300)
    loaded = write_shop(second, url, shop.schema, if_exists="replace")
    assert [(x.table, x.rows) for x in loaded] == [(name, len(second[name])) for name in shop.names]
    assert [r[0] for r in db.content(shop.customers)] == ["C0300", "C0301", "C0302"]
    assert all(db.count(name) == len(second[name]) for name in shop.names)
    assert_keys(db, shop)
    with pytest.raises(sa.exc.IntegrityError):  # a key of the old shop is gone with it
        insert(db, shop.lines, line_id="L90000", customer_id="C0001", product_id="P0300", quantity=1)


def test_a_table_outside_the_shop_pointing_into_it_stops_a_replace(db):
    """Its foreign key could not survive the swap; the replace is refused before anything moves."""
    shop = Shop(db)
    write_shop(shop.frames(), db.url, shop.schema)
    before = shop.contents(db)
    reviews = f"reviews_{shop.customers}"
    db.tables.insert(0, reviews)  # dropped before the customers it points at
    charset = " CHARACTER SET utf8mb4" if db.kind == "mysql" else ""
    db.execute(f"CREATE TABLE {db.q(reviews)} (id VARCHAR(8) PRIMARY KEY, customer_id VARCHAR(5){charset} "
               f"REFERENCES {db.q(shop.customers)} (id))")
    for attempt in (lambda: check_shop(db.url, shop.schema, "replace"),
                    lambda: write_shop(shop.frames(start=300), db.url, shop.schema, if_exists="replace")):
        with pytest.raises(ShopgenError, match=f"table {reviews!r} .* has a foreign key on table {shop.customers!r}"):
            attempt()
    assert shop.contents(db) == before


@pytest.mark.parametrize("db", ["mysql"], indirect=True)
def test_staging_tables_of_a_dead_shop_load_are_dropped(db):
    """A killed load leaves staging tables with foreign keys on each other; the next load drops them all."""
    stale = []
    for parent_first in (True, False, True):  # listed in any order but a few, some parent comes before its child
        base = f"_shopgen_0_{uuid.uuid4().hex[:6]}"  # connection 0 never exists, so its lock is free
        parent, child = (f"{base}_0", f"{base}_1") if parent_first else (f"{base}_1", f"{base}_0")
        db.tables[:0] = [child, parent]  # in case they stay
        db.execute(f"CREATE TABLE {parent} (id VARCHAR(5) PRIMARY KEY) ENGINE=InnoDB")
        db.execute(f"CREATE TABLE {child} (id VARCHAR(5) PRIMARY KEY, p VARCHAR(5), "
                   f"FOREIGN KEY (p) REFERENCES {parent} (id)) ENGINE=InnoDB")
        stale += [parent, child]
    shop = Shop(db)
    write_shop(shop.frames(), db.url, shop.schema)
    assert not set(stale) & stages(db)
