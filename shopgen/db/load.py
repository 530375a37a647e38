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

A driver error, a row the constraints refuse, a lost connection or a killed process all end the same
way: the transaction is rolled back (by us, or by the server when the connection drops) and the table
is exactly what it was.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import secrets
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from shopgen.db import DEFAULT_BATCH, check_if_exists
from shopgen.db.ddl import create_table_sql, dialect_for, key_name, key_sql, kind_of
from shopgen.db.target import DbTarget, driver_errors, first_line
from shopgen.errors import ShopgenError
from shopgen.schema import CatalogSchema

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


def _failure(exc: BaseException, target: DbTarget, table: str, feed: Feed, stage: str | None,
             where: str | None = None) -> ShopgenError:
    detail = first_line(exc)
    if where is None:
        where = f"at rows {feed.rows + 1}-{feed.rows + feed.in_flight}" if feed.in_flight else f"after {feed.rows} rows"
    context = getattr(getattr(exc, "diag", None), "context", None)  # psycopg: "COPY t, line 57: ..."
    line = re.search(r"line (\d+)", context or "")
    if line:
        where = f"at row {line[1]}"  # COPY reports a bad row once the stream ends; the line is the row
    if stage:
        detail = detail.replace(stage, table)
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
    if batch_size < 1:
        raise ShopgenError(f"batch size {batch_size} must be at least 1")
    feed = Feed(frames, batch_size)
    tick = on_rows or (lambda n: None)
    t0 = time.perf_counter()
    loader = {"sqlite": _sqlite, "postgresql": _postgresql, "mysql": _mysql}[target.family]
    method = loader(target, table, schema, feed, if_exists, tick, bulk)
    return Loaded(str(target), table, feed.rows, time.perf_counter() - t0, feed.input_seconds, method)


def _sqlite(target: DbTarget, table: str, schema: CatalogSchema, feed: Feed, if_exists: str,
            tick: Callable[[int], None], bulk: str) -> str:
    path = Path(target.url.database)
    new_file = not path.exists()
    dialect = dialect_for("sqlite")
    q = dialect.identifier_preparer.quote
    raw = target.connect()
    con = raw.driver_connection
    con.isolation_level = None  # BEGIN and COMMIT are ours, so the DDL is inside the transaction too
    cur = con.cursor()
    ok = False
    try:
        cur.execute("BEGIN IMMEDIATE")
        info = describe(cur, "sqlite", table)
        decide(info, target, table, if_exists, schema)
        cur.execute("PRAGMA cache_size = -65536")  # this connection only: 64 MiB of pages (measured +4 %)
        created = not info.exists or if_exists == "replace"
        if info.exists and if_exists == "replace":
            cur.execute(f"DROP TABLE {q(table)}")
        if created:
            cur.execute(create_table_sql(schema, table, dialect))
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
        if created and schema.primary_key:
            cur.execute(key_sql(schema, table, dialect))
        cur.execute("COMMIT")
        ok = True
    except _driver_errors() as exc:
        raise _failure(exc, target, table, feed, None) from None
    finally:
        if not ok:
            _quietly(lambda: con.execute("ROLLBACK"))
        raw.close()
        if not ok and new_file:
            for leftover in (path, path.with_name(path.name + "-journal")):
                _quietly(lambda p=leftover: p.unlink(missing_ok=True))
    return "executemany"


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
            names = ", ".join(q(n) for n in schema.names)
            copy_sql = f"COPY {q(name)} ({names}) FROM STDIN" + (" (FREEZE)" if created else "")
            # A thread formats the next batch while this one waits for the socket (measured: up to +15 %).
            with cur.copy(copy_sql) as copy, contextlib.closing(_ahead(feed, lambda b: copy_text(b, schema))) as ready:
                for batch, data in ready:
                    copy.write(data)
                    tick(len(batch))
            if created and schema.primary_key:
                cur.execute(key_sql(schema, name, dialect))
            if stage:
                cur.execute(f"DROP TABLE {q(table)}")
                cur.execute(f"ALTER TABLE {q(stage)} RENAME TO {q(table)}")
                if schema.primary_key:
                    cur.execute(f"ALTER TABLE {q(table)} RENAME CONSTRAINT {q(key_name(stage))} TO {q(key_name(table))}")
        con.commit()
    except _driver_errors() as exc:
        _quietly(con.rollback)
        raise _failure(exc, target, table, feed, stage) from None
    except BaseException:
        _quietly(con.rollback)
        raise
    finally:
        raw.close()
    return "COPY"


def _mysql(target: DbTarget, table: str, schema: CatalogSchema, feed: Feed, if_exists: str,
           tick: Callable[[int], None], bulk: str) -> str:
    dialect = dialect_for(target.url.get_backend_name())
    q = dialect.identifier_preparer.quote
    raw = target.connect()
    con = raw.driver_connection
    cur = con.cursor()
    stage, done, where = None, 0, None
    try:
        # Strict: a value that does not fit is an error, never a silent truncation.
        cur.execute("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'")
        info = describe(cur, "mysql", table)
        decide(info, target, table, if_exists, schema)
        cur.execute("SELECT @@GLOBAL.local_infile")
        infile = bulk == "auto" and bool(int(cur.fetchone()[0]))
        _drop_stale_stages(cur, q)
        name = table
        if not (info.exists and if_exists == "append"):
            stage = name = f"{STAGE_PREFIX}{con.thread_id()}_{secrets.token_hex(3)}"
            cur.execute("SELECT GET_LOCK(%s, 0)", (f"shopgen:{stage}",))  # tells later loads it is alive
            cur.execute(create_table_sql(schema, stage, dialect))  # DDL commits here; the target is untouched
        con.begin()
        names = ", ".join(q(n) for n in schema.names)
        # InnoDB stores rows in key order: rows that arrive sorted append instead of splitting pages
        # (measured: a sorted 100k-row frame loads with a fifth less server time than random ids).
        feed.sort_by = schema.primary_key
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
                        where = f"at rows {done + 1}-{done + len(batch)}"
                        cur.execute(f"LOAD DATA LOCAL INFILE {con.escape(str(path))} INTO TABLE {q(name)} "
                                    "CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' "
                                    f"LINES TERMINATED BY '\\n' ({names})")
                        _check_batch(cur, len(batch))
                        done += len(batch)
                        tick(len(batch))
            else:
                # PyMySQL's executemany %-formats the statement's head, so a '%' in a name is doubled there.
                head = f"INSERT INTO {q(name)} ({names}) VALUES ".replace("%", "%%")
                insert = head + f"({', '.join(['%s'] * len(schema.names))})"
                for batch in feed:
                    where = f"at rows {done + 1}-{done + len(batch)}"
                    cur.executemany(insert, list(zip(*python_columns(batch, schema))))
                    done += len(batch)
                    tick(len(batch))
        where = f"after {done} rows"
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
        raise _failure(exc, target, table, feed, stage, where) from None
    except BaseException:
        _quietly(con.rollback)
        raise
    finally:
        if stage:
            _quietly(lambda: cur.execute(f"DROP TABLE IF EXISTS {q(stage)}"))
        raw.close()
    return "LOAD DATA LOCAL INFILE" if infile else "executemany"


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
    for (name,) in cur.fetchall():
        match = re.match(rf"({STAGE_PREFIX}\d+_[0-9a-f]+)", name)
        if not match:
            continue
        cur.execute("SELECT IS_FREE_LOCK(%s)", (f"shopgen:{match[1]}",))
        if cur.fetchone()[0] == 1:
            cur.execute(f"DROP TABLE IF EXISTS {q(name)}")
