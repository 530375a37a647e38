"""Bulk loads that leave the table as it was unless every row went in.

One transaction per load, streamed in batches so memory stays flat however many rows there are:

* PostgreSQL: COPY FROM STDIN (psycopg 3) in the text format; a new table gets COPY FREEZE and its primary
  key built after the load (a sort instead of row-by-row index inserts); `replace` loads a staging
  table and swaps it in, all in the same transaction, so readers see the old rows until the commit.
* SQLite: executemany of many-row INSERTs in one BEGIN IMMEDIATE … COMMIT, DDL included; a new
  table's key (a unique index) is built after its rows.
* MariaDB/MySQL: DDL commits on its own there, so a new or replacing table is loaded into a staging
  table that one atomic RENAME TABLE swaps in; `append` loads the existing InnoDB table in a transaction.
  Rows go in through LOAD DATA LOCAL INFILE, one temporary file per batch, each frame sorted by the key.
  Measured here (MariaDB 10.11, 100k catalog rows, benchmarks/db_seed.py): LOAD DATA about twice
  the rows/s of PyMySQL's multi-row INSERT executemany. The driver hardly matters to LOAD DATA, and
  for INSERT the C drivers gained only a third over PyMySQL (mysqlclient 29k rows/s, MariaDB
  Connector/C 28k, PyMySQL 22k, all on a busy machine) while needing MariaDB's C headers to install,
  so PyMySQL, pure Python, is the driver. LOAD DATA LOCAL turns bad rows into warnings instead of
  errors (the server cannot stop a file mid-send), so every batch's warnings and row count are checked
  and any shortfall rolls the load back. A server with local_infile off gets the INSERT path.

A whole shop (`load_shop`) goes in the same way, every table in one load, parents first, each through
the row path of its backend above (one function per backend streams a feed into a table, for both):

* SQLite: foreign keys on, checked at the commit (deferred); the old tables dropped children first and
  the new ones made, each with its FOREIGN KEYs, in the one transaction. A table's unique key index is
  built right after its rows, before its children's rows look it up; `PRAGMA foreign_key_check` before
  the COMMIT names the first row whose key has no parent.
* PostgreSQL: each table COPYed, its primary key added after its rows, the FOREIGN KEYs after every
  table is in (one join each, not a lookup per row). Replaced tables load under staging names and are
  swapped in at the end, in the same transaction.
* MariaDB/MySQL: staging tables with FOREIGN KEYs on each other, filled in one transaction, then one
  atomic RENAME TABLE swaps in the whole shop. InnoDB moves a foreign key along with its parent's
  rename, so the new tables' keys point at the real names.

A driver error, a row the constraints refuse, a lost connection or a killed process all end the same
way: the transaction is rolled back (by us, or by the server when the connection drops) and the tables
are exactly what they were.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import secrets
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from shopgen.db import DEFAULT_BATCH, check_if_exists
from shopgen.db.ddl import (
    create_table_sql,
    dialect_for,
    foreign_key_sql,
    key_name,
    key_sql,
    kind_of,
    shop_tables,
    table_sql,
)
from shopgen.db.target import DbTarget, driver_errors, first_line
from shopgen.errors import OptionError, ShopgenError
from shopgen.schema import CatalogSchema
from shopgen.shop_schema import ShopSchema

T = TypeVar("T")
R = TypeVar("R")
SQLITE_ROWS_PER_INSERT = 100
STAGE_PREFIX = "_shopgen_"
_ESCAPE = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_SPECIAL = ("\\", "\t", "\n", "\r")
NULL = "\\N"


@dataclass
class Loaded:
    """What a load did. `input_seconds` is time spent waiting for rows (generation), not loading them."""

    target: str
    table: str
    rows: int
    seconds: float
    input_seconds: float
    method: str

    @property
    def rows_per_second(self) -> float:
        busy = self.seconds - self.input_seconds
        return self.rows / busy if busy > 0 else float("inf")


@dataclass
class TableInfo:
    exists: bool
    columns: list[str] = field(default_factory=list)
    engine: str | None = None


class LoadRefused(Exception):
    """The server took a batch only in part (MariaDB's LOAD DATA LOCAL warns instead of failing)."""


# ---- rows ----------------------------------------------------------------------------------------
def _values(series: pd.Series, kind: str, decimals: int | None, name: str) -> tuple[Any, np.ndarray]:
    """A column as (values, null mask): numpy arrays for numbers and booleans, a list of str for text.

    Masks come from the cheapest test for the dtype (isnan, or the types present in a text column):
    pandas' isna on text cost a tenth of a whole SQLite load.
    """
    dtype = series.dtype
    if kind in ("int", "float"):
        if not isinstance(dtype, np.dtype):  # a pandas extension dtype: Int64 (nullable), Float64, ...
            mask = series.isna().to_numpy()
            if dtype.kind in "iu":
                arr = series.to_numpy(dtype="int64", na_value=0)  # through float64, big ids would lose digits
            else:
                arr = series.to_numpy(dtype="float64", na_value=np.nan)
        elif dtype.kind == "f":
            arr = series.to_numpy()
            mask = np.isnan(arr)
        elif dtype.kind in "iu":
            arr = series.to_numpy()
            mask = np.zeros(len(arr), dtype=bool)
        else:  # object: numbers as Python objects, or strings
            mask = series.isna().to_numpy()
            arr = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64")
            bad = np.isnan(arr) & ~mask
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ShopgenError(f"column {name!r} holds {series.iloc[i]!r} (row {series.index[i]}), not a number; "
                                   "fix the catalog or its schema")
        if kind == "float":
            arr = arr.astype("float64", copy=False)
            return (np.round(arr, decimals) if decimals is not None else arr), mask
        if arr.dtype.kind == "f":
            whole = np.isfinite(arr) & (arr == np.round(arr))
            bad = ~whole & ~mask
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ShopgenError(f"column {name!r} holds {series.iloc[i]!r} (row {series.index[i]}), not a whole number; "
                                   "integer columns need whole numbers")
            arr = np.where(mask, 0, arr).astype("int64")
        return arr, mask
    if kind == "bool":
        mask = series.isna().to_numpy()
        return np.asarray(series.where(~pd.Series(mask, index=series.index), False), dtype=bool), mask
    values = series.tolist()
    if set(map(type, values)) == {str}:  # map(type) runs at C speed: the common case costs no more
        return values, np.zeros(len(values), dtype=bool)
    mask = series.isna().to_numpy()
    return ["" if m else (v if type(v) is str else str(v)) for v, m in zip(values, mask)], mask


def _prepared(batch: pd.DataFrame, schema: CatalogSchema) -> list[tuple[Any, np.ndarray, str]]:
    missing = [n for n in schema.names if n not in batch.columns]
    if missing:
        raise ShopgenError(f"the catalog lacks column(s) {missing} of schema {schema.name!r}; write a frame with every schema column")
    out = []
    for col in schema.columns:
        kind = kind_of(col)
        series = batch[col.name]
        if kind.name == "datetime":  # the column's own layout, rewritten as the ISO text every backend reads
            moments = col.parse_moments(series)
            series = moments.dt.strftime(kind.layout).where(moments.notna(), None)
            bad = moments.isna().to_numpy() & batch[col.name].notna().to_numpy()
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ShopgenError(f"column {col.name!r} holds {str(batch[col.name].iloc[i])[:40]!r} (row {i}), not a "
                                   f"datetime written as {col.format!r}; fix the catalog or its schema")
        values, mask = _values(series, kind.name, kind.decimals, col.name)
        out.append((values, mask, kind.name))
    return out


def python_columns(batch: pd.DataFrame, schema: CatalogSchema) -> list[list[Any]]:
    """Each schema column as a list of Python values, None for missing: what executemany binds."""
    out = []
    for values, mask, _ in _prepared(batch, schema):
        column = values.tolist() if isinstance(values, np.ndarray) else list(values)
        if mask.any():
            for i in np.flatnonzero(mask).tolist():
                column[i] = None
        out.append(column)
    return out


def copy_text(batch: pd.DataFrame, schema: CatalogSchema) -> bytes:
    """Rows in the text format PostgreSQL's COPY and MariaDB's LOAD DATA share: tab-separated, one row
    per line, backslash escapes, `\\N` for NULL. Built a column at a time, so it runs at C speed."""
    columns = []
    for values, mask, kind in _prepared(batch, schema):
        if kind == "bool":
            text = np.where(values, "1", "0").tolist()
        elif isinstance(values, np.ndarray):  # Python's own float repr is shortest-exact and beats numpy's astype(str)
            text = list(map(repr if kind == "float" else str, values.tolist()))
        else:
            text = values
            if any(ch in "\x00".join(text) for ch in _SPECIAL):
                text = [v.translate(_ESCAPE) for v in text]
        if mask.any():
            text = list(text)
            for i in np.flatnonzero(mask).tolist():
                text[i] = NULL
        columns.append(text)
    if not columns or not len(batch):
        return b""
    return ("\n".join(map("\t".join, zip(*columns))) + "\n").encode("utf-8")


class Feed:
    """Batches of at most `batch_size` rows from frames arriving one by one, timing the wait for them;
    with `sort_by`, each frame is sorted by that column first."""

    def __init__(self, frames: Iterable[pd.DataFrame], batch_size: int) -> None:
        self.frames, self.batch_size = iter(frames), batch_size
        self.rows, self.input_seconds, self.in_flight = 0, 0.0, 0
        self.sort_by: str | None = None
        # Where a failure is, set by a loader that reads a batch ahead (the feed's newest is then not the one
        # the server refused).
        self.where: str | None = None

    def __iter__(self) -> Iterator[pd.DataFrame]:
        while True:
            t0 = time.perf_counter()
            try:
                frame = next(self.frames)
            except StopIteration:
                return
            finally:
                self.input_seconds += time.perf_counter() - t0
            if self.sort_by is not None:
                frame = frame.sort_values(self.sort_by, kind="stable")
            for start in range(0, len(frame), self.batch_size):
                batch = frame.iloc[start:start + self.batch_size]
                self.in_flight = len(batch)
                yield batch
                self.rows += len(batch)
                self.in_flight = 0


# ---- inspection ----------------------------------------------------------------------------------
def describe(cur: Any, family: str, table: str) -> TableInfo:
    """Whether `table` exists (in the connection's schema or database), its columns and engine."""
    if family == "sqlite":
        cur.execute("SELECT type FROM sqlite_master WHERE name = ?", (table,))
        row = cur.fetchone()
        if row is None:
            return TableInfo(False)
        if row[0] != "table":
            raise ShopgenError(f"{table!r} is a {row[0]}, not a table; choose another --table")
        cur.execute(f"PRAGMA table_info({dialect_for('sqlite').identifier_preparer.quote(table)})")
        return TableInfo(True, [r[1] for r in cur.fetchall()])
    if family == "postgresql":
        cur.execute("SELECT c.oid, c.relkind FROM pg_class c WHERE c.relname = %s "
                    "AND c.relnamespace = to_regnamespace(current_schema())::oid", (table,))
        row = cur.fetchone()
        if row is None:
            return TableInfo(False)
        if row[1] not in ("r", "p"):
            raise ShopgenError(f"{table!r} exists and is not a table (relkind {row[1]!r}); choose another --table")
        cur.execute("SELECT attname FROM pg_attribute WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped "
                    "ORDER BY attnum", (row[0],))
        return TableInfo(True, [r[0] for r in cur.fetchall()])
    cur.execute("SELECT DATABASE()")
    if cur.fetchone()[0] is None:
        raise ShopgenError("the MariaDB/MySQL URL names no database; end it in /DATABASE, e.g. mysql://root@127.0.0.1/test")
    cur.execute("SELECT engine, table_type FROM information_schema.tables WHERE table_schema = DATABASE() "
                "AND table_name = %s", (table,))
    row = cur.fetchone()
    if row is None:
        return TableInfo(False)
    if row[1] != "BASE TABLE":
        raise ShopgenError(f"{table!r} is a {row[1].lower()}, not a table; choose another --table")
    cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() "
                "AND table_name = %s ORDER BY ordinal_position", (table,))
    return TableInfo(True, [r[0] for r in cur.fetchall()], engine=row[0])


def decide(info: TableInfo, target: DbTarget, table: str, if_exists: str, schema: CatalogSchema) -> None:
    """Refuse, before any row moves, what `if_exists` says must not happen."""
    check_if_exists(if_exists)
    if not info.exists:
        return
    if if_exists == "fail":
        raise ShopgenError(
            f"table {table!r} already exists in {target}; pass --if-exists replace to overwrite it, "
            "--if-exists append to add rows, or another --table"
        )
    if if_exists == "append":
        missing = [n for n in schema.names if n not in info.columns]
        if missing:
            raise ShopgenError(
                f"table {table!r} in {target} lacks column(s) {missing} of the catalog; "
                "use --if-exists replace or another --table"
            )
        if info.engine is not None and info.engine.lower() != "innodb":
            raise ShopgenError(
                f"table {table!r} in {target} uses the {info.engine} engine, which cannot roll back a failed load; "
                f"convert it (ALTER TABLE ... ENGINE=InnoDB) or use --if-exists replace"
            )


def check(target: DbTarget, table: str, if_exists: str, schema: CatalogSchema) -> None:
    """Connect and check the table against `if_exists`, so a doomed load fails before rows are generated."""
    if target.family == "sqlite" and not Path(target.url.database).exists():
        decide(TableInfo(False), target, table, if_exists, schema)  # nothing to find; do not create the file
        return
    raw = target.connect()
    try:
        cur = raw.cursor()
        decide(describe(cur, target.family, table), target, table, if_exists, schema)
    except _driver_errors() as exc:
        raise ShopgenError(f"cannot inspect {target} ({first_line(exc)}); check the URL and the user's rights") from None
    finally:
        _quietly(raw.rollback)
        raw.close()


# ---- loads ---------------------------------------------------------------------------------------
def _driver_errors() -> tuple[type[BaseException], ...]:
    return (*driver_errors(), LoadRefused)


def _quietly(fn: Callable[[], Any]) -> None:
    """Cleanup after a failure that is already being reported: its own error would hide the first."""
    with contextlib.suppress(Exception):
        fn()


def _failure(exc: BaseException, target: DbTarget, table: str, feed: Feed, stages: Mapping[str, str] | None = None,
             where: str | None = None) -> ShopgenError:
    """One line for a failed load: the table, the rows, the server's reason, with staging names (keys of
    `stages`) told as the tables they stand for."""
    detail = first_line(exc)
    if where is None:
        where = feed.where
    if where is None:
        where = f"at rows {feed.rows + 1}-{feed.rows + feed.in_flight}" if feed.in_flight else f"after {feed.rows} rows"
    diag = getattr(exc, "diag", None)  # psycopg: the context names COPY's line, the detail the key at fault
    line = re.search(r"line (\d+)", getattr(diag, "context", None) or "")
    if line:
        where = f"at row {line[1]}"  # COPY reports a bad row once the stream ends; the line is the row
    if getattr(diag, "message_detail", None):
        detail = f"{detail} ({first_line(diag.message_detail)})"
    for stage in sorted(stages or {}, key=len, reverse=True):  # a longer stage name may hold a shorter one
        detail = detail.replace(stage, stages[stage])
    return ShopgenError(
        f"loading table {table!r} in {target} failed {where}: {detail}; nothing was written (the load was rolled back)"
    )


def load(
    target: DbTarget, table: str, schema: CatalogSchema, frames: Iterable[pd.DataFrame], *,
    if_exists: str = "fail", batch_size: int = DEFAULT_BATCH, on_rows: Callable[[int], None] | None = None,
    bulk: str = "auto",
) -> Loaded:
    """Load `frames` into `table` all-or-nothing; `bulk='insert'` forces MariaDB's executemany path."""
    check_if_exists(if_exists)
    _check_batch_size(batch_size)
    feed = Feed(frames, batch_size)
    tick = on_rows or (lambda n: None)
    t0 = time.perf_counter()
    loader = {"sqlite": _sqlite, "postgresql": _postgresql, "mysql": _mysql}[target.family]
    method = loader(target, table, schema, feed, if_exists, tick, bulk)
    return Loaded(str(target), table, feed.rows, time.perf_counter() - t0, feed.input_seconds, method)


def _check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise ShopgenError(f"batch size {batch_size} must be at least 1")


def _sqlite(target: DbTarget, table: str, schema: CatalogSchema, feed: Feed, if_exists: str,
            tick: Callable[[int], None], bulk: str) -> str:
    dialect = dialect_for("sqlite")
    q = dialect.identifier_preparer.quote
    with _sqlite_transaction(target, lambda exc: _failure(exc, target, table, feed)) as cur:
        info = describe(cur, "sqlite", table)
        decide(info, target, table, if_exists, schema)
        created = not info.exists or if_exists == "replace"
        if info.exists and if_exists == "replace":
            cur.execute(f"DROP TABLE {q(table)}")
        if created:
            cur.execute(create_table_sql(schema, table, dialect))
        _sqlite_rows(cur, table, schema, feed, tick)
        if created and schema.primary_key:
            cur.execute(key_sql(schema, table, dialect))
    return "executemany"


@contextlib.contextmanager
def _sqlite_transaction(target: DbTarget, failure: Callable[[BaseException], ShopgenError],
                        foreign_keys: bool = False) -> Iterator[Any]:
    """A cursor in one BEGIN IMMEDIATE … COMMIT, DDL included; a driver error rolls back and becomes
    `failure(exc)`, and a file this load created is removed again."""
    path = Path(target.url.database)
    new_file = not path.exists()
    raw = target.connect()
    con = raw.driver_connection
    con.isolation_level = None  # BEGIN and COMMIT are ours, so the DDL is inside the transaction too
    cur = con.cursor()
    ok = False
    try:
        if foreign_keys:
            cur.execute("PRAGMA foreign_keys = ON")  # a no-op inside a transaction, so before BEGIN
        cur.execute("BEGIN IMMEDIATE")
        cur.execute("PRAGMA cache_size = -65536")  # this connection only: 64 MiB of pages (measured +4 %)
        yield cur
        cur.execute("COMMIT")
        ok = True
    except _driver_errors() as exc:
        raise failure(exc) from None
    finally:
        if not ok:
            _quietly(lambda: con.execute("ROLLBACK"))
        raw.close()
        if not ok and new_file:
            for leftover in (path, path.with_name(path.name + "-journal")):
                _quietly(lambda p=leftover: p.unlink(missing_ok=True))


def _sqlite_rows(cur: Any, table: str, schema: CatalogSchema, feed: Feed, tick: Callable[[int], None]) -> None:
    """Stream the feed into `table` through the open transaction of `cur`."""
    q = dialect_for("sqlite").identifier_preparer.quote
    # Many rows per INSERT: a sixth less CPU per row than one-row statements (measured). 999 is the
    # fewest bound parameters any SQLite build allows in one statement.
    width = len(schema.names)
    per = max(1, min(SQLITE_ROWS_PER_INSERT, 999 // width))
    head = f"INSERT INTO {q(table)} ({', '.join(q(n) for n in schema.names)}) VALUES "
    one = "(" + ", ".join("?" * width) + ")"
    many, single = head + ", ".join([one] * per), head + one
    for batch in feed:
        flat = list(itertools.chain.from_iterable(zip(*python_columns(batch, schema))))
        whole = len(batch) // per * per
        cur.executemany(many, (flat[i * width:(i + per) * width] for i in range(0, whole, per)))
        cur.executemany(single, (flat[i * width:(i + 1) * width] for i in range(whole, len(batch))))
        tick(len(batch))


def _postgresql(target: DbTarget, table: str, schema: CatalogSchema, feed: Feed, if_exists: str,
                tick: Callable[[int], None], bulk: str) -> str:
    dialect = dialect_for("postgresql")
    q = dialect.identifier_preparer.quote
    raw = target.connect()
    con = raw.driver_connection
    stage = None
    try:
        with con.cursor() as cur:
            info = describe(cur, "postgresql", table)
            decide(info, target, table, if_exists, schema)
            created = not info.exists or if_exists == "replace"
            name = table
            if info.exists and if_exists == "replace":
                stage = name = f"{STAGE_PREFIX}{secrets.token_hex(6)}"
            if created:
                cur.execute(create_table_sql(schema, name, dialect, primary_key=False))
            _postgresql_rows(cur, name, schema, feed, tick, freeze=created)
            if created and schema.primary_key:
                cur.execute(key_sql(schema, name, dialect))
            if stage:
                cur.execute(f"DROP TABLE {q(table)}")
                _pg_rename(cur, stage, table, schema)
        con.commit()
    except _driver_errors() as exc:
        _quietly(con.rollback)
        raise _failure(exc, target, table, feed, {stage: table} if stage else None) from None
    except BaseException:
        _quietly(con.rollback)
        raise
    finally:
        raw.close()
    return "COPY"


def _postgresql_rows(cur: Any, table: str, schema: CatalogSchema, feed: Feed, tick: Callable[[int], None],
                     freeze: bool) -> None:
    """COPY the feed into `table` in the open transaction; `freeze` for a table this transaction created."""
    q = dialect_for("postgresql").identifier_preparer.quote
    names = ", ".join(q(n) for n in schema.names)
    copy_sql = f"COPY {q(table)} ({names}) FROM STDIN" + (" (FREEZE)" if freeze else "")
    # A thread formats the next batch while this one waits for the socket (measured: up to +15 %).
    with cur.copy(copy_sql) as copy, contextlib.closing(_ahead(feed, lambda b: copy_text(b, schema))) as ready:
        for batch, data in ready:
            copy.write(data)
            tick(len(batch))


def _pg_rename(cur: Any, stage: str, table: str, schema: CatalogSchema) -> None:
    """A loaded staging table takes the real name, and its key the name that goes with it."""
    q = dialect_for("postgresql").identifier_preparer.quote
    cur.execute(f"ALTER TABLE {q(stage)} RENAME TO {q(table)}")
    if schema.primary_key:
        cur.execute(f"ALTER TABLE {q(table)} RENAME CONSTRAINT {q(key_name(stage))} TO {q(key_name(table))}")


def _mysql(target: DbTarget, table: str, schema: CatalogSchema, feed: Feed, if_exists: str,
           tick: Callable[[int], None], bulk: str) -> str:
    dialect = dialect_for(target.url.get_backend_name())
    q = dialect.identifier_preparer.quote
    raw = target.connect()
    con = raw.driver_connection
    cur = con.cursor()
    stage, infile = None, False
    try:
        info = describe(cur, "mysql", table)
        decide(info, target, table, if_exists, schema)
        infile = _mysql_session(cur, bulk)
        name = table
        if not (info.exists and if_exists == "append"):
            stage = name = f"{STAGE_PREFIX}{con.thread_id()}_{secrets.token_hex(3)}"
            cur.execute("SELECT GET_LOCK(%s, 0)", (f"shopgen:{stage}",))  # tells later loads it is alive
            cur.execute(create_table_sql(schema, stage, dialect))  # DDL commits here; the target is untouched
        con.begin()
        _mysql_rows(cur, con, name, schema, feed, tick, infile)
        con.commit()
        if stage and info.exists:
            old = f"{stage}_old"
            cur.execute(f"RENAME TABLE {q(table)} TO {q(old)}, {q(stage)} TO {q(table)}")  # atomic swap
            cur.execute(f"DROP TABLE {q(old)}")
        elif stage:
            cur.execute(f"RENAME TABLE {q(stage)} TO {q(table)}")  # fails if the table appeared meanwhile
        stage = None
    except _driver_errors() as exc:
        _quietly(con.rollback)
        raise _failure(exc, target, table, feed, {stage: table} if stage else None) from None
    except BaseException:
        _quietly(con.rollback)
        raise
    finally:
        if stage:
            _quietly(lambda: cur.execute(f"DROP TABLE IF EXISTS {q(stage)}"))
        raw.close()
    return "LOAD DATA LOCAL INFILE" if infile else "executemany"


def _mysql_session(cur: Any, bulk: str) -> bool:
    """Strict mode on this connection, stale staging tables gone; whether LOAD DATA LOCAL is the way in."""
    # Strict: a value that does not fit is an error, never a silent truncation.
    cur.execute("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'")
    cur.execute("SELECT @@GLOBAL.local_infile")
    infile = bulk == "auto" and bool(int(cur.fetchone()[0]))
    _drop_stale_stages(cur, dialect_for("mysql").identifier_preparer.quote)
    return infile


def _mysql_rows(cur: Any, con: Any, table: str, schema: CatalogSchema, feed: Feed, tick: Callable[[int], None],
                infile: bool) -> None:
    """Stream the feed into `table` in the open transaction: LOAD DATA LOCAL INFILE, or executemany."""
    q = dialect_for("mysql").identifier_preparer.quote
    names = ", ".join(q(n) for n in schema.names)
    # InnoDB stores rows in key order: rows that arrive sorted append instead of splitting pages
    # (measured: a sorted 100k-row frame loads with a fifth less server time than random ids).
    feed.sort_by = schema.primary_key
    done = 0
    with tempfile.TemporaryDirectory(prefix="shopgen-load-") as tmp:
        if infile:
            files = itertools.cycle([Path(tmp) / "a.tsv", Path(tmp) / "b.tsv"])

            def encode(batch: pd.DataFrame) -> Path:
                path = next(files)
                path.write_bytes(copy_text(batch, schema))
                return path

            # While the server loads one batch, a thread encodes the next (the wait releases the GIL).
            with contextlib.closing(_ahead(feed, encode)) as ready:
                for batch, path in ready:
                    feed.where = f"at rows {done + 1}-{done + len(batch)}"
                    cur.execute(f"LOAD DATA LOCAL INFILE {con.escape(str(path))} INTO TABLE {q(table)} "
                                "CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' "
                                f"LINES TERMINATED BY '\\n' ({names})")
                    _check_batch(cur, len(batch))
                    done += len(batch)
                    tick(len(batch))
        else:
            # PyMySQL's executemany %-formats the statement's head, so a '%' in a name is doubled there.
            head = f"INSERT INTO {q(table)} ({names}) VALUES ".replace("%", "%%")
            insert = head + f"({', '.join(['%s'] * len(schema.names))})"
            for batch in feed:
                feed.where = f"at rows {done + 1}-{done + len(batch)}"
                cur.executemany(insert, list(zip(*python_columns(batch, schema))))
                done += len(batch)
                tick(len(batch))
    feed.where = f"after {done} rows"


# ---- a whole shop --------------------------------------------------------------------------------
class _ShopRun:
    """A shop load's state: each table's feed, progress and time, and where it is (what a failure names)."""

    def __init__(self, shop: ShopSchema, frames: Mapping[str, Iterable[pd.DataFrame]], batch_size: int,
                 on_rows: Callable[[str, int], None] | None) -> None:
        self.shop = shop
        self.feeds = {name: Feed(frames[name], batch_size) for name in shop.order}
        self.seconds = dict.fromkeys(shop.order, 0.0)
        self.current, self.where = shop.order[0], None
        self.on_rows = on_rows

    @contextlib.contextmanager
    def table(self, name: str) -> Iterator[tuple[Feed, Callable[[int], None]]]:
        """The table's feed and tick while its rows go in; the time this takes is the table's."""
        self.current, on_rows = name, self.on_rows
        t0 = time.perf_counter()
        try:
            yield self.feeds[name], (lambda n: on_rows(name, n)) if on_rows else (lambda n: None)
        finally:
            self.seconds[name] += time.perf_counter() - t0

    def at(self, name: str, where: str) -> None:
        """A step of the table's own after its rows (a foreign key's check): what a failure now names."""
        self.current, self.where = name, where

    def failure(self, exc: BaseException, target: DbTarget, stages: Mapping[str, str] | None = None) -> ShopgenError:
        return _failure(exc, target, self.current, self.feeds[self.current], stages, self.where)


def shop_mode(if_exists: str) -> str:
    """`if_exists` when a shop can take it: fail or replace."""
    check_if_exists(if_exists)
    if if_exists == "append":
        raise OptionError("if_exists", "'append' is refused for a shop: its new keys would collide with the keys "
                                       "already in its tables; use replace, or a fresh database")
    return if_exists


def describe_shop(cur: Any, family: str, shop: ShopSchema) -> dict[str, TableInfo]:
    return {name: describe(cur, family, name) for name in shop.order}


def decide_shop(infos: Mapping[str, TableInfo], target: DbTarget, shop: ShopSchema, if_exists: str) -> list[str]:
    """Refuse, before any row moves, what `if_exists` says must not happen; the shop's tables that exist."""
    shop_mode(if_exists)
    existing = [name for name in shop.order if infos[name].exists]
    if existing and if_exists == "fail":
        raise ShopgenError(
            f"table(s) {existing} of shop {shop.name!r} already exist in {target}; pass --if-exists replace to "
            "replace every table of the shop together, or use another database"
        )
    return existing


def check_shop(target: DbTarget, shop: ShopSchema, if_exists: str) -> None:
    """Connect and check the shop's tables against `if_exists`, before any row is generated."""
    shop_mode(if_exists)
    if target.family == "sqlite" and not Path(target.url.database).exists():
        return  # nothing to find; do not create the file
    raw = target.connect()
    try:
        cur = raw.cursor()
        existing = decide_shop(describe_shop(cur, target.family, shop), target, shop, if_exists)
        _refuse_outside_links(cur, target.family, target, shop, existing)
    except _driver_errors() as exc:
        raise ShopgenError(f"cannot inspect {target} ({first_line(exc)}); check the URL and the user's rights") from None
    finally:
        _quietly(raw.rollback)
        raw.close()


def load_shop(
    target: DbTarget, shop: ShopSchema, frames: Mapping[str, Iterable[pd.DataFrame]], *, if_exists: str = "fail",
    batch_size: int = DEFAULT_BATCH, on_rows: Callable[[str, int], None] | None = None, bulk: str = "auto",
) -> list[Loaded]:
    """Load every table of `shop` from `frames` (a table's name -> its frames) all-or-nothing, parents first,
    with PRIMARY and FOREIGN KEY constraints; `on_rows(table, n)` as rows go in. A `Loaded` per table, its
    `seconds` the table's own (its rows and key); the checks and the swap at the end count in none."""
    shop_mode(if_exists)
    _check_batch_size(batch_size)
    missing = [name for name in shop.order if name not in frames]
    unknown = [str(name) for name in frames if name not in shop.names]
    if missing or unknown:
        raise ShopgenError(f"the frames do not match shop {shop.name!r}: " + "; ".join(
            ([f"table(s) {missing} have none"] if missing else []) + ([f"{unknown} are no table of it"] if unknown else [])
        ) + f"; give one entry for each of {shop.names}")
    run = _ShopRun(shop, frames, batch_size, on_rows)
    loader = {"sqlite": _sqlite_shop, "postgresql": _postgresql_shop, "mysql": _mysql_shop}[target.family]
    method = loader(target, run, if_exists, bulk)
    return [Loaded(str(target), name, run.feeds[name].rows, run.seconds[name], run.feeds[name].input_seconds, method)
            for name in shop.order]


def _sqlite_shop(target: DbTarget, run: _ShopRun, if_exists: str, bulk: str) -> str:
    dialect = dialect_for("sqlite")
    q = dialect.identifier_preparer.quote
    with _sqlite_transaction(target, lambda exc: run.failure(exc, target), foreign_keys=True) as cur:
        # Checked at the commit, not at each row, so the check before it can name the row and key at fault.
        cur.execute("PRAGMA defer_foreign_keys = ON")
        existing = decide_shop(describe_shop(cur, "sqlite", run.shop), target, run.shop, if_exists)
        _refuse_outside_links(cur, "sqlite", target, run.shop, existing)
        for name in reversed(existing):  # children first: a parent's rows go while nothing points at them
            cur.execute(f"DROP TABLE {q(name)}")
        for name, schema, table in shop_tables(run.shop, dialect, primary_key=False):
            with run.table(name) as (feed, tick):
                cur.execute(table_sql(table, dialect))
                _sqlite_rows(cur, name, schema, feed, tick)
                if schema.primary_key:  # before the children's rows: a foreign key looks its parent up there
                    cur.execute(key_sql(schema, name, dialect))
        for name in run.shop.order:
            if run.shop.keys_of(name):
                _sqlite_dangling(cur, run, name)
    return "executemany"


def _sqlite_dangling(cur: Any, run: _ShopRun, table: str) -> None:
    """Refuse the first row of `table` whose foreign key is no key of its parent."""
    q = dialect_for("sqlite").identifier_preparer.quote
    cur.execute(f"PRAGMA foreign_key_check({q(table)})")
    bad = cur.fetchone()
    if bad is None:
        return
    _, rowid, parent, link = bad
    cur.execute(f"PRAGMA foreign_key_list({q(table)})")
    column = next(row[3] for row in cur.fetchall() if row[0] == link)
    cur.execute(f"SELECT {q(column)} FROM {q(table)} WHERE rowid = ?", (rowid,))
    run.at(table, f"at row {rowid}")  # a new table's rowids count its rows from 1
    raise LoadRefused(f"its {column} {cur.fetchone()[0]!r} is no key of table {parent!r} (FOREIGN KEY constraint failed)")


def _postgresql_shop(target: DbTarget, run: _ShopRun, if_exists: str, bulk: str) -> str:
    dialect = dialect_for("postgresql")
    q = dialect.identifier_preparer.quote
    raw = target.connect()
    con = raw.driver_connection
    stages: dict[str, str] = {}
    try:
        with con.cursor() as cur:
            existing = decide_shop(describe_shop(cur, "postgresql", run.shop), target, run.shop, if_exists)
            _refuse_outside_links(cur, "postgresql", target, run.shop, existing)
            # A replaced table loads under a staging name, so readers see the old rows until the swap at the end.
            stages = {name: f"{STAGE_PREFIX}{secrets.token_hex(6)}" for name in existing}
            for name, schema, table in shop_tables(run.shop, dialect, stages, primary_key=False):
                with run.table(name) as (feed, tick):
                    cur.execute(table_sql(table, dialect, foreign_keys=False))
                    _postgresql_rows(cur, table.name, schema, feed, tick, freeze=True)
                    if schema.primary_key:
                        cur.execute(key_sql(schema, table.name, dialect))
            for name in reversed(existing):  # children first: a parent goes once nothing points at it
                run.at(name, "dropping the old table")  # a view on it, say, keeps it
                cur.execute(f"DROP TABLE {q(name)}")
            for name in existing:
                _pg_rename(cur, stages[name], name, run.shop.table(name))
            for name, _, table in shop_tables(run.shop, dialect):
                for link in run.shop.keys_of(name):
                    run.at(name, f"checking its foreign key {link.column!r} -> table {link.parent!r}")
                    cur.execute(foreign_key_sql(table, link.column, dialect))
        con.commit()
    except _driver_errors() as exc:
        _quietly(con.rollback)
        raise run.failure(exc, target, {stage: name for name, stage in stages.items()}) from None
    except BaseException:
        _quietly(con.rollback)
        raise
    finally:
        raw.close()
    return "COPY"


def _mysql_shop(target: DbTarget, run: _ShopRun, if_exists: str, bulk: str) -> str:
    dialect = dialect_for(target.url.get_backend_name())
    q = dialect.identifier_preparer.quote
    raw = target.connect()
    con = raw.driver_connection
    cur = con.cursor()
    base = f"{STAGE_PREFIX}{con.thread_id()}_{secrets.token_hex(3)}"  # one lock for every staging table
    stages = {name: f"{base}_{i}" for i, name in enumerate(run.shop.order)}
    made: list[str] = []  # what the end drops, children last in the list: staging tables, or the old tables
    infile = False
    try:
        existing = decide_shop(describe_shop(cur, "mysql", run.shop), target, run.shop, if_exists)
        _refuse_outside_links(cur, "mysql", target, run.shop, existing)
        infile = _mysql_session(cur, bulk)
        cur.execute("SELECT GET_LOCK(%s, 0)", (f"shopgen:{base}",))  # tells later loads it is alive
        tables = shop_tables(run.shop, dialect, stages)
        for _, _, table in tables:  # DDL commits here; the shop's tables are untouched
            cur.execute(table_sql(table, dialect))  # its foreign keys point at the staging parents
            made.append(table.name)
        con.begin()
        for name, schema, table in tables:
            with run.table(name) as (feed, tick):
                _mysql_rows(cur, con, table.name, schema, feed, tick, infile)
        con.commit()
        swaps = []
        for name in run.shop.order:
            if name in existing:
                swaps.append(f"{q(name)} TO {q(stages[name] + '_old')}")
            swaps.append(f"{q(stages[name])} TO {q(name)}")
        # One atomic swap of the whole shop. A foreign key follows its parent's rename, so the new tables'
        # keys point at the new parents by their real names, and the old ones' at the old.
        cur.execute("RENAME TABLE " + ", ".join(swaps))
        made = [stages[name] + "_old" for name in run.shop.order if name in existing]
    except _driver_errors() as exc:
        _quietly(con.rollback)
        raise run.failure(exc, target, {stage: name for name, stage in stages.items()}) from None
    except BaseException:
        _quietly(con.rollback)
        raise
    finally:
        # Children first. A table that will not go keeps its staging name, so a later load drops it.
        for name in reversed(made):
            _quietly(lambda n=name: cur.execute(f"DROP TABLE IF EXISTS {q(n)}"))
        raw.close()
    return "LOAD DATA LOCAL INFILE" if infile else "executemany"


def _refuse_outside_links(cur: Any, family: str, target: DbTarget, shop: ShopSchema, existing: list[str]) -> None:
    """Refuse to replace a table that a table outside the shop has a foreign key on: PostgreSQL would not
    drop it, SQLite would keep the key pointing at whatever rows the new table has, and MariaDB would move
    the key to the old table as the swap renames it."""
    if not existing:
        return
    if family == "sqlite":
        q = dialect_for("sqlite").identifier_preparer.quote
        cur.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        links = []
        for (child,) in cur.fetchall():
            if child not in shop.names:
                cur.execute(f"PRAGMA foreign_key_list({q(child)})")
                links += [(child, row[2]) for row in cur.fetchall()]
    elif family == "postgresql":
        cur.execute("SELECT ch.relname, pa.relname FROM pg_constraint c JOIN pg_class ch ON ch.oid = c.conrelid "
                    "JOIN pg_class pa ON pa.oid = c.confrelid WHERE c.contype = 'f' AND pa.relname = ANY(%s) "
                    "AND pa.relnamespace = to_regnamespace(current_schema())::oid "
                    "AND (ch.relnamespace <> pa.relnamespace OR NOT ch.relname = ANY(%s))", (existing, shop.names))
        links = cur.fetchall()
    else:
        cur.execute("SELECT table_name, referenced_table_name FROM information_schema.referential_constraints "
                    "WHERE constraint_schema = DATABASE() AND referenced_table_name IN "
                    f"({', '.join(['%s'] * len(existing))})", existing)
        links = [(child, parent) for child, parent in cur.fetchall() if child not in shop.names]
    outside = [(child, parent) for child, parent in links if parent in existing]
    if outside:
        child, parent = outside[0]
        raise ShopgenError(f"table {child!r} in {target} has a foreign key on table {parent!r} of shop {shop.name!r}, "
                           "which replacing the shop would break; drop that constraint first, or use another database")


def _ahead(items: Iterable[T], work: Callable[[T], R]) -> Iterator[tuple[T, R]]:
    """(item, work(item)) pairs, the next item's work running in a thread while the caller uses this one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        for item in items:
            future = pool.submit(work, item)
            if pending is not None:
                yield pending[0], pending[1].result()
            pending = (item, future)
        if pending is not None:
            yield pending[0], pending[1].result()


def _check_batch(cur: Any, expected: int) -> None:
    """LOAD DATA LOCAL skips or clips a bad row with a warning; any warning or missing row fails the load."""
    loaded = cur.rowcount
    cur.execute("SHOW WARNINGS LIMIT 3")
    problems = [f"{code}: {message}" for level, code, message in cur.fetchall() if level != "Note"]
    if problems or loaded != expected:
        why = "; ".join(problems) or "no warning given"
        raise LoadRefused(f"the server took {loaded} of {expected} rows ({why})")


def _drop_stale_stages(cur: Any, q: Callable[[str], str]) -> None:
    """Drop staging tables of loads that died (kill -9, lost connection); a live load holds its lock."""
    cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
                "AND table_name LIKE %s", (STAGE_PREFIX.replace("_", "\\_") + "%",))
    stale = []
    for (name,) in cur.fetchall():
        match = re.match(rf"({STAGE_PREFIX}\d+_[0-9a-f]+)", name)
        if not match:
            continue
        cur.execute("SELECT IS_FREE_LOCK(%s)", (f"shopgen:{match[1]}",))
        if cur.fetchone()[0] == 1:
            stale.append(name)
    if not stale:
        return
    # A dead shop load's staging tables point at each other; they all go, so none needs its parent kept.
    cur.execute("SET SESSION foreign_key_checks = 0")
    try:
        for name in stale:
            cur.execute(f"DROP TABLE IF EXISTS {q(name)}")
    finally:
        cur.execute("SET SESSION foreign_key_checks = 1")
