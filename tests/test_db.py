"""Seeding databases: the derived table, the bulk paths, all-or-nothing loads, against real servers.

SQLite runs everywhere. PostgreSQL and MariaDB are the servers every project machine runs; their URLs
come from SHOPGEN_TEST_POSTGRES_URL and SHOPGEN_TEST_MYSQL_URL. An unreachable server skips its tests
locally and fails them in CI (CI=true), so a missing server can never pass for a green run.
"""

from __future__ import annotations

import math
import os
import selectors
import signal
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import ROOT, SAMPLE_CSV, SAMPLE_SCHEMA

from shopgen.errors import ShopgenError

SERVERS = {
    "postgresql": os.environ.get("SHOPGEN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    "mysql": os.environ.get("SHOPGEN_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"),
}
DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg", "mysql": "mysql+pymysql",
           "mariadb": "mariadb+pymysql"}
_reachable: dict[str, str | None] = {}
# Names that need quoting everywhere: spaces, capitals, a dash, a double quote and a percent sign.
ODD_NAME = 'Order Items-{} "x" %'


class Db:
    """One backend as the tests see it: the URL a user writes and an independent SQLAlchemy engine."""

    def __init__(self, kind: str, url: str) -> None:
        self.kind, self.url = kind, url
        scheme, rest = url.split("://", 1)
        self.engine = sa.create_engine(f"{DRIVERS.get(scheme, scheme)}://{rest}", poolclass=sa.pool.NullPool)
        # Quoted as SQL text: sa.text() doubles each '%' for the drivers itself.
        self.q = type(self.engine.dialect)(paramstyle="named").identifier_preparer.quote
        self.tables: list[str] = []

    def table(self, pattern: str = "t_{}") -> str:
        name = pattern.format(uuid.uuid4().hex[:10])
        self.tables.append(name)
        return name

    def rows(self, sql: str, **params) -> list[tuple]:
        with self.engine.connect() as con:
            return [tuple(r) for r in con.execute(sa.text(sql), params)]

    def execute(self, sql: str, **params) -> None:
        with self.engine.begin() as con:
            con.execute(sa.text(sql), params)

    def content(self, table: str) -> list[tuple]:
        return sorted(self.rows(f"SELECT * FROM {self.q(table)}"), key=lambda r: r[0])

    def count(self, table: str) -> int:
        return self.rows(f"SELECT COUNT(*) FROM {self.q(table)}")[0][0]

    def exists(self, table: str) -> bool:
        return sa.inspect(self.engine).has_table(table)

    def drop_all(self) -> None:
        for name in self.tables:
            self.execute(f"DROP TABLE IF EXISTS {self.q(name)}")
        self.engine.dispose()


def _server(kind: str) -> str:
    """The server's URL, or skip (locally) / fail (CI) when it cannot be reached."""
    url = SERVERS[kind]
    if kind not in _reachable:
        try:
            Db(kind, url).rows("SELECT 1")
            _reachable[kind] = None
        except Exception as exc:  # any failure to connect: refused, auth, missing driver
            _reachable[kind] = str(exc).splitlines()[0]
    if _reachable[kind] is not None:
        message = f"{kind} server at {url} is unreachable ({_reachable[kind]})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI must run against it")
        pytest.skip(message)
    return url


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def db(request, tmp_path):
    kind = request.param
    url = f"sqlite:///{tmp_path / 'test.db'}" if kind == "sqlite" else _server(kind)
    handle = Db(kind, url)
    yield handle
    handle.drop_all()


@pytest.fixture
def catalog(sample_df) -> pd.DataFrame:
    """The sample catalog with texts the bulk formats must escape, and a missing rating."""
    df = sample_df.copy()
    df.loc[0, "description"] = "tab\there, new\nline, cr\rhere, back\\slash, \\N, \\. 'single' \"double\" ünïcødé ✓ 100%"
    df.loc[1, "name"] = "\\N"  # the text format's NULL marker, as text: must stay text
    df.loc[2, "name"] = ""
    df.loc[3, "rating"] = float("nan")
    return df


def _load(df, db: Db, table: str, schema, **kw):
    from shopgen import db as shopdb

    return shopdb.write(df, db.url, table, schema=schema, **kw)


def _expected(df: pd.DataFrame) -> list[tuple]:
    out = []
    for r in df.itertuples(index=False):
        out.append((r.sku, r.category, r.brand, round(r.price, 2), round(r.list_price, 2), int(r.units_sold),
                    None if math.isnan(r.rating) else round(r.rating, 1), r.name, r.description))
    return sorted(out)


def _plain(rows: list[tuple]) -> list[tuple]:
    return sorted(tuple(float(v) if isinstance(v, Decimal) else v for v in r) for r in rows)


def _with_skus(df: pd.DataFrame, start: int) -> pd.DataFrame:
    out = df.copy()
    out["sku"] = [f"SKU-{start + i:08d}" for i in range(len(out))]
    return out


# ---- the table the schema declares -----------------------------------------------------------------
def test_ddl_is_derived_from_the_schema(sample_schema):
    from shopgen.db import create_table_sql
    from shopgen.schema import CatalogSchema

    for dialect in ("postgresql", "mariadb", "sqlite"):
        sql = create_table_sql(sample_schema, "products", dialect)
        key = "CREATE UNIQUE INDEX products_pkey ON products (sku)" if dialect == "sqlite" else "PRIMARY KEY (sku)"
        for piece in ("sku VARCHAR(12) ", "price NUMERIC(6, 2) NOT NULL", "name VARCHAR(120) NOT NULL",
                      "description VARCHAR(600) NOT NULL", "rating NUMERIC(2, 1),", key,
                      "CHECK (list_price >= price)", "CHECK (price >= 0.99)", "CHECK (price <= 2500)",
                      "CHECK (units_sold >= 0)"):
            assert piece in sql, (dialect, piece, sql)
        assert "sku VARCHAR(12) NOT NULL" in sql or 'sku VARCHAR(12) COLLATE "C" NOT NULL' in sql
    long_text = CatalogSchema.from_dict({"name": "x", "columns": {"a": {"type": "numeric"}, "t": {"type": "text", "max_length": 20_000}}})
    sql = create_table_sql(long_text, "x", "mariadb")  # over MariaDB's row limit as VARCHAR: TEXT, length checked
    assert "t MEDIUMTEXT NOT NULL" in sql and "CHECK (char_length(t) <= 20000)" in sql and "a DOUBLE NOT NULL" in sql
    proc = subprocess.run([sys.executable, "-m", "shopgen.cli", "schema", "ddl", str(SAMPLE_SCHEMA), "--dialect",
                           "postgresql", "--table", "Order Items"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith('CREATE TABLE "Order Items" (') and proc.stdout.strip().endswith(");")
    assert 'CONSTRAINT "Order Items_pkey" PRIMARY KEY (sku)' in proc.stdout


def test_derived_constraints_exist_and_hold(db, catalog, sample_schema):
    table = db.table()
    loaded = _load(catalog, db, table, sample_schema)
    assert loaded.rows == len(catalog)
    q = db.q(table)
    if db.kind == "sqlite":
        sql = db.rows("SELECT sql FROM sqlite_master WHERE name = :t", t=table)[0][0]
        assert "CHECK (list_price >= price)" in sql and "sku VARCHAR(12) NOT NULL" in sql
        assert _key_columns(db, table) == ["sku"]
        info = {r[1]: (r[2], r[3]) for r in db.rows(f"PRAGMA table_info({q})")}
        assert info["price"] == ("NUMERIC(6, 2)", 1) and info["rating"] == ("NUMERIC(2, 1)", 0)
    else:
        where = "table_schema = current_schema()" if db.kind == "postgresql" else "table_schema = DATABASE()"
        cols = {r[0]: r[1:] for r in db.rows(
            "SELECT column_name, data_type, numeric_precision, numeric_scale, character_maximum_length, is_nullable "
            f"FROM information_schema.columns WHERE {where} AND table_name = :t", t=table)}
        assert cols["price"][1:3] == (6, 2) and cols["price"][4] == "NO"
        assert cols["name"][3] == 120 and cols["rating"][4] == "YES"
        kinds = [r[0] for r in db.rows(
            f"SELECT constraint_type FROM information_schema.table_constraints WHERE {where} AND table_name = :t", t=table)]
        assert "PRIMARY KEY" in kinds
        if db.kind == "postgresql":
            clauses = [r[0] for r in db.rows(
                "SELECT cc.check_clause FROM information_schema.table_constraints tc "
                "JOIN information_schema.check_constraints cc USING (constraint_schema, constraint_name) "
                "WHERE tc.table_schema = current_schema() AND tc.table_name = :t AND tc.constraint_type = 'CHECK'",
                t=table)]
        else:
            clauses = [r[0] for r in db.rows(
                "SELECT check_clause FROM information_schema.check_constraints "
                "WHERE constraint_schema = DATABASE() AND table_name = :t", t=table)]
        flat = {"".join(ch for ch in c if ch not in "()` ").replace("::numeric", "") for c in clauses}
        for clause in ("list_price>=price", "price>=0.99", "price<=2500", "units_sold>=0", "rating<=5"):
            assert clause in flat, (clause, flat)
    # The database itself refuses what validation refuses: list_price below price.
    with pytest.raises(sa.exc.DBAPIError):
        db.execute(f"INSERT INTO {q} (sku, category, brand, price, list_price, units_sold, name, description) "
                   "VALUES ('SKU-99999999', 'Books', 'b', 10, 5, 1, 'n', 'd')")
    assert db.count(table) == len(catalog)


def test_rows_round_trip_exactly(db, catalog, sample_schema):
    """Cents stay exact, NULL stays NULL, and tabs, newlines, backslashes and \\N stay text."""
    table = db.table()
    _load(catalog, db, table, sample_schema, batch_size=333)
    got = _plain(db.content(table))
    assert got == _expected(catalog)
    names = dict(db.rows(f"SELECT sku, name FROM {db.q(table)}"))
    assert names[catalog.loc[1, "sku"]] == "\\N" and names[catalog.loc[2, "sku"]] == ""


# ---- all or nothing --------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["append", "replace"])
def test_a_violating_row_rolls_the_whole_load_back(db, catalog, sample_schema, mode):
    table = db.table()
    _load(catalog.head(50), db, table, sample_schema)
    before = db.content(table)
    bad = _with_skus(catalog, 10_000_000)
    bad.loc[1500, "list_price"] = bad.loc[1500, "price"] - 1  # breaks list_price >= price, batches after 3 good ones
    with pytest.raises(ShopgenError, match="nothing was written"):
        _load(bad, db, table, sample_schema, if_exists=mode, batch_size=500)
    assert db.content(table) == before


@pytest.mark.parametrize("mode", ["append", "replace"])
def test_a_duplicate_key_rolls_the_whole_load_back(db, catalog, sample_schema, mode):
    table = db.table()
    _load(catalog.head(50), db, table, sample_schema)
    before = db.content(table)
    dup = _with_skus(catalog, 10_000_000)
    dup.loc[2000, "sku"] = dup.loc[10, "sku"]
    with pytest.raises(ShopgenError, match="nothing was written"):
        _load(dup, db, table, sample_schema, if_exists=mode, batch_size=500)
    assert db.content(table) == before


def test_mariadb_insert_path_is_all_or_nothing_too(catalog, sample_schema):
    """The executemany path a server with local_infile off gets: same rows, same rollback."""
    handle = Db("mysql", _server("mysql"))
    try:
        table = handle.table()
        loaded = _load(catalog, handle, table, sample_schema, bulk="insert", batch_size=700)
        assert loaded.method == "executemany"
        assert _plain(handle.content(table)) == _expected(catalog)
        bad = _with_skus(catalog, 10_000_000)
        bad.loc[2000, "price"] = 99_999  # above the schema's max of 2500
        with pytest.raises(ShopgenError, match="nothing was written"):
            _load(bad, handle, table, sample_schema, bulk="insert", if_exists="append", batch_size=700)
        assert handle.count(table) == len(catalog)
    finally:
        handle.drop_all()


def test_if_exists_modes(db, catalog, sample_schema):
    table = db.table()
    first = catalog.head(100)
    _load(first, db, table, sample_schema)  # fail (the default) creates a missing table
    with pytest.raises(ShopgenError, match="already exists"):
        _load(catalog.head(10), db, table, sample_schema)
    assert db.count(table) == 100
    more = _with_skus(catalog.head(40), 20_000_000)
    _load(more, db, table, sample_schema, if_exists="append")
    assert db.count(table) == 140
    _load(catalog.tail(7), db, table, sample_schema, if_exists="replace")
    assert _plain(db.content(table)) == _expected(catalog.tail(7))
    assert _key_columns(db, table) == ["sku"]  # the swapped-in table keeps its key
    with pytest.raises(ShopgenError, match="unknown"):
        _load(catalog.head(3), db, table, sample_schema, if_exists="sometimes")


def _key_columns(db: Db, table: str) -> list[str]:
    """The primary key's columns; on SQLite, the unique index that stands for it."""
    inspector = sa.inspect(db.engine)
    if db.kind != "sqlite":
        return inspector.get_pk_constraint(table)["constrained_columns"]
    return next((ix["column_names"] for ix in inspector.get_indexes(table) if ix["unique"]), [])


def test_identifiers_that_need_quoting(db):
    from shopgen.schema import CatalogSchema

    schema = CatalogSchema.from_dict({
        "name": "odd",
        "primary_key": "Item ID",
        "columns": {
            "Item ID": {"type": "id", "pattern": "I-[0-9]{6}"},
            "select": {"type": "categorical", "values": ["it's", "b"]},
            "Unit Price": {"type": "numeric", "min": 0, "decimals": 2},
            "List-Price": {"type": "numeric", "min": 0, "decimals": 2},
            "100% Text": {"type": "text", "max_length": 40},
        },
        "rules": ["List-Price >= Unit Price"],
    })
    df = pd.DataFrame({"Item ID": ["I-000001", "I-000002"], "select": ["it's", "b"], "Unit Price": [1.5, 2.25],
                       "List-Price": [1.5, 3.0], "100% Text": ["a\tb", "c"]})
    table = db.table(ODD_NAME)
    _load(df, db, table, schema)
    assert _plain(db.content(table)) == [("I-000001", "it's", 1.5, 1.5, "a\tb"), ("I-000002", "b", 2.25, 3.0, "c")]
    _load(df, db, table, schema, if_exists="replace")  # the staging-table swap under an odd name
    assert db.count(table) == 2
    bad = df.assign(**{"Item ID": ["I-000003", "I-000004"], "List-Price": [1.0, 3.0]})
    with pytest.raises(ShopgenError, match="nothing was written"):
        _load(bad, db, table, schema, if_exists="append")
    assert db.count(table) == 2


def test_every_column_kind_round_trips(db):
    """Booleans, listed integers, doubles, nullable integers (pandas Int64), big integers, missing text."""
    from shopgen.schema import CatalogSchema

    schema = CatalogSchema.from_dict({
        "name": "kinds",
        "primary_key": "id",
        "columns": {
            "id": {"type": "id", "pattern": "K[0-9]{3}"},
            "flag": {"type": "categorical", "values": [False, True], "nullable": True},
            "size": {"type": "categorical", "values": [1, 2, 3]},
            "score": {"type": "numeric"},
            "qty": {"type": "integer", "min": 0, "max": 100, "nullable": True},
            "views": {"type": "integer"},
            "note": {"type": "text", "max_length": 20, "nullable": True},
        },
    })
    df = pd.DataFrame({
        "id": ["K001", "K002", "K003"],
        "flag": [True, None, False],
        "size": [1, 3, 2],
        "score": [0.1 + 0.2, -1e-7, 12345.678],
        "qty": pd.array([5, None, 100], dtype="Int64"),
        "views": [3_000_000_000, 0, -7],
        "note": ["a", None, "tab\there"],
    })
    table = db.table()
    _load(df, db, table, schema)
    got = [tuple(bool(v) if i == 1 and v is not None else v for i, v in enumerate(r)) for r in _plain(db.content(table))]
    assert got == [("K001", True, 1, 0.1 + 0.2, 5, 3_000_000_000, "a"), ("K002", None, 3, -1e-7, None, 0, None),
                   ("K003", False, 2, 12345.678, 100, -7, "tab\there")]
    with pytest.raises(ShopgenError, match="not a whole number"):
        _load(df.assign(id=["K004", "K005", "K006"], views=[1.5, 2, 3]), db, table, schema, if_exists="append")
    assert db.count(table) == 3


def test_datetimes_and_numeric_levels_load_as_the_backend_types(db):
    """A datetime in its own layout lands as a DATE or TIMESTAMP; numeric levels get their CHECK."""
    import datetime as dt

    from shopgen.schema import CatalogSchema

    schema = CatalogSchema.from_dict({
        "name": "moments",
        "columns": {
            "sold": {"type": "datetime", "format": "%d/%m/%Y %H:%M", "nullable": True},
            "day": {"type": "datetime", "format": "%Y-%m-%d"},
            "stars": {"type": "integer", "values": [1, 3, 5]},
        },
    })
    df = pd.DataFrame({"sold": ["31/01/2011 09:05", None, "01/12/2010 23:59"], "day": ["2011-02-03"] * 3,
                       "stars": [1, 5, 3]})
    table = db.table()
    _load(df, db, table, schema)
    got = db.rows(f"SELECT {db.q('sold')}, {db.q('day')} FROM {db.q(table)} ORDER BY {db.q('stars')}")
    as_text = [tuple(None if v is None else str(v) for v in r) for r in got]
    assert as_text == [("2011-01-31 09:05:00", "2011-02-03"), ("2010-12-01 23:59:00", "2011-02-03"),
                       (None, "2011-02-03")]
    if db.kind != "sqlite":  # a server gives back real moments, not text
        assert isinstance(got[0][0], dt.datetime) and isinstance(got[0][1], dt.date)
    with pytest.raises(ShopgenError, match="not a datetime written as"):
        _load(df.assign(sold=["2011-01-31", None, None]), db, table, schema, if_exists="append")
    with pytest.raises(Exception):  # noqa: B017 - the CHECK constraint is the backend's own error
        _load(df.assign(stars=[2, 2, 2]), db, table, schema, if_exists="append")
    assert db.count(table) == 3


# ---- a killed process ------------------------------------------------------------------------------
KILL_SCRIPT = """
import itertools, sys
import pandas as pd
from shopgen import db
from shopgen.schema import CatalogSchema

url, table, mode, csv, schema_path = sys.argv[1:6]
schema = CatalogSchema.from_yaml(schema_path)
base = pd.read_csv(csv)

def frames():  # endless: the load is still running whenever it is killed
    for i in itertools.count():
        chunk = base.copy()
        chunk["sku"] = [f"SKU-{50_000_000 + i * len(base) + j:08d}" for j in range(len(base))]
        yield chunk

def loaded(n):
    print("loaded", n, flush=True)

db.write(frames(), url, table, schema=schema, if_exists=mode, batch_size=200, on_rows=loaded)
"""


def _kill_after_first_batch(url: str, table: str, mode: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, url, table, mode, str(SAMPLE_CSV), str(SAMPLE_SCHEMA)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            ready = sel.select(timeout=120)  # the signal is the child's own line, not a guess at its timing
        line = proc.stdout.readline() if ready else ""
        assert line.startswith("loaded"), f"the load never started: {line!r} {proc.stderr.read() if proc.poll() is not None else ''}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL, "the load finished before the kill; it must be endless"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("mode", ["append", "replace"])
def test_a_process_killed_mid_load_leaves_the_table_as_it_was(db, catalog, sample_schema, mode):
    table = db.table()
    _load(catalog.head(300), db, table, sample_schema)
    before = db.content(table)
    stages_before = _stages(db)
    _kill_after_first_batch(db.url, table, mode)
    new_stages = _stages(db) - stages_before  # MariaDB loads a replacing table into a staging table
    deadline = time.monotonic() + 30
    while True:  # the server rolls back once it sees the connection drop; until then the old rows show anyway
        after = db.content(table)
        if after == before or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert after == before
    _load(_with_skus(catalog.head(5), 30_000_000), db, table, sample_schema, if_exists="append")
    assert db.count(table) == 305  # the table is usable: no lock or half-made state left behind
    if db.kind == "mysql" and mode == "replace":
        # The killed load's staging table goes with the next load, once the server has dropped the dead
        # connection and its lock (a staging table of a load running beside this test keeps its lock).
        deadline, dead = time.monotonic() + 30, set()
        while not dead:
            dead = {n for n in new_stages if db.rows("SELECT IS_FREE_LOCK(:n)", n=f"shopgen:{n}")[0][0] == 1}
            assert dead or time.monotonic() < deadline, f"no staging table of the killed load among {new_stages}"
            time.sleep(0.1)
        _load(_with_skus(catalog.head(5), 40_000_000), db, table, sample_schema, if_exists="append")
        assert not dead & _stages(db)


def _stages(db: Db) -> set[str]:
    return {n for n in sa.inspect(db.engine).get_table_names() if n.startswith("_shopgen_")}


# ---- bad input ------------------------------------------------------------------------------------
def test_bad_targets_are_one_clear_error_and_write_nothing(tmp_path, catalog, sample_schema):
    from shopgen import db as shopdb

    cases = [
        ("oracle://scott@db/x", "products", "unknown scheme 'oracle'"),
        ("postgresql://postgres@127.0.0.1:1/test", "products", "cannot connect"),
        ("mysql://root@127.0.0.1:1/test", "products", "cannot connect"),
        (f"sqlite:///{tmp_path}/missing/x.db", "products", "does not exist"),
        (f"sqlite:///{tmp_path}/x.db", "a.b", "holds a dot"),
        (f"sqlite:///{tmp_path}/x.db", "", "empty"),
        (f"sqlite:///{tmp_path}/x.db", "_shopgen_1_ab", "staging"),
        (f"sqlite:///{tmp_path}/x.db", "x" * 64, "longer than 63 bytes"),
    ]
    for url, table, needle in cases:
        with pytest.raises(ShopgenError, match=needle):
            shopdb.write(catalog, url, table, schema=sample_schema)
    assert list(tmp_path.iterdir()) == []


def test_write_dispatches_on_the_target(tmp_path, catalog, sample_schema):
    """`shopgen.write` is the one writer: files stay atomic files, a URL or .db path is a table."""
    import shopgen

    path = tmp_path / "shop.db"
    loaded = shopgen.write(catalog, path, table="products", schema=sample_schema)
    assert loaded.rows == len(catalog) and loaded.method == "executemany"
    assert shopgen.write(catalog, tmp_path / "c.csv") == tmp_path / "c.csv"
    with pytest.raises(ShopgenError, match="needs a table"):
        shopgen.write(catalog, f"sqlite:///{path}")
    # Without a schema the table's types are inferred from the frame: no range checks to trip a later append.
    inferred = shopgen.write(catalog, f"sqlite:///{path}", table="inferred")
    assert inferred.rows == len(catalog)
    con = Db("sqlite", f"sqlite:///{path}")
    sql = con.rows("SELECT sql FROM sqlite_master WHERE name = 'inferred'")[0][0]
    assert "price NUMERIC(" in sql and ", 2)" in sql and "price >=" not in sql
    assert _key_columns(con, "inferred") == ["sku"]


# ---- the command ----------------------------------------------------------------------------------
def shopgen_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shopgen.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)


def one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("shopgen: error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def schema_bundle(tmp_path_factory) -> Path:
    """A real bundle holding only its schema: enough for every check that runs before the model loads."""
    from shopgen.bundle import write_bundle

    def fill(tmp: Path) -> dict:
        (tmp / "schema.yaml").write_text(SAMPLE_SCHEMA.read_text())
        return {}

    return write_bundle(tmp_path_factory.mktemp("schema_only") / "model", fill)


def test_seed_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, schema_bundle):
    existing = tmp_path / "has.db"
    Db("sqlite", f"sqlite:///{existing}").execute("CREATE TABLE products (sku TEXT)")
    snapshot = existing.read_bytes()
    cases = [
        (["--db", "oracle://x/y", "--table", "p"], ["unknown scheme 'oracle'"]),
        (["--db", "postgresql://postgres@127.0.0.1:1/test", "--table", "p"], ["cannot connect", "port 1"]),
        (["--db", f"sqlite:///{tmp_path}/new.db", "--table", "a.b"], ["'a.b'", "holds a dot"]),
        (["--db", f"sqlite:///{tmp_path}/new.db", "--table", "p", "--if-exists", "sometimes"], ["--if-exists 'sometimes'"]),
        (["--db", str(existing), "--table", "products"], ["'products' already exists", "--if-exists replace"]),
        (["--db", str(existing), "--table", "products", "--if-exists", "append"], ["lacks column(s)"]),
    ]
    for args, needles in cases:
        one_line_error(shopgen_cli("seed", schema_bundle, "-n", 10, "--quiet", *args), *needles)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["has.db"] and existing.read_bytes() == snapshot
    one_line_error(shopgen_cli("sample", schema_bundle, "-n", 5, "-o", "oracle://x/y"), "unknown scheme")


def test_seed_command_fills_a_table_all_or_nothing(tiny_synth, tmp_path):
    """`shopgen seed` and `shopgen sample -o sqlite:///…` on a fitted bundle; a clashing append writes nothing."""
    from shopgen.schema import CatalogSchema
    from shopgen.validation import validate

    _, bundle = tiny_synth
    schema = CatalogSchema.from_yaml(Path(bundle) / "schema.yaml")
    url = f"sqlite:///{tmp_path / 'seed.db'}"
    proc = shopgen_cli("seed", bundle, "--db", url, "--table", "products", "-n", 30, "--batch-size", 10,
                       "--seed", 1, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "seeded 30 valid rows into table 'products'" in proc.stdout
    handle = Db("sqlite", url)
    rows = pd.read_sql_table("products", handle.engine)
    assert len(rows) == 30 and rows["sku"].is_unique
    assert validate(rows, schema).success
    again = shopgen_cli("seed", bundle, "--db", url, "--table", "products", "-n", 30, "--batch-size", 10,
                        "--seed", 1, "--if-exists", "append", "--quiet")  # the same ids again: the key refuses them
    one_line_error(again, "UNIQUE constraint failed", "nothing was written")
    assert handle.count("products") == 30
    proc = shopgen_cli("sample", bundle, "-n", 12, "-o", url, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert handle.count("product_catalog") == 12  # the table is named after the schema unless --table says


def test_a_shop_ddl_declares_keys_the_database_enforces(db):
    """Parents are created first, and each database refuses a line whose customer does not exist and a second
    customer with the same key (SQLite checks foreign keys once a connection turns them on)."""
    from shopgen.db import create_shop_sql
    from shopgen.shop_schema import ShopSchema

    lines, customers = db.table("lines_{}"), db.table("customers_{}")  # dropped in this order: the child first
    shop = ShopSchema.from_dict({"name": "s", "tables": {
        lines: {"columns": {"customer": {"type": "id"}, "basket": {"type": "id"}, "qty": {"type": "integer", "min": 1}},
                "foreign_keys": {"customer": customers}, "basket": "basket"},
        customers: {"primary_key": "id", "columns": {"id": {"type": "id", "pattern": "C[0-9]{3}"},
                                                     "country": {"type": "categorical"}}},
    }})
    script = create_shop_sql(shop, db.kind)
    assert script.index(f"CREATE TABLE {db.q(customers)}") < script.index(f"CREATE TABLE {db.q(lines)}")
    for statement in script.rstrip(";").split(";\n\n"):
        db.execute(statement)

    def insert(table: str, **row) -> None:
        with db.engine.begin() as con:
            if db.kind == "sqlite":
                con.exec_driver_sql("PRAGMA foreign_keys=ON")
            con.execute(sa.text(f"INSERT INTO {db.q(table)} ({', '.join(map(db.q, row))}) "
                                f"VALUES ({', '.join(':' + k for k in row)})"), row)

    insert(customers, id="C001", country="UK")
    insert(lines, customer="C001", basket="B1", qty=2)
    with pytest.raises(sa.exc.IntegrityError):
        insert(lines, customer="C999", basket="B2", qty=1)
    with pytest.raises(sa.exc.IntegrityError):
        insert(customers, id="C001", country="FR")
    assert db.count(lines) == 1 and db.count(customers) == 1
