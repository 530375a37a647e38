"""Seed a database table with a catalog, or a shop's tables with their keys: SQLite (a file), PostgreSQL
or MariaDB/MySQL, by URL.

The tables come from the schema (`ddl.py`), the rows go in through each backend's bulk path in one
all-or-nothing load (`load.py`). SQLAlchemy and the drivers are imported only when a database is used.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from shopgen.errors import OptionError, ShopgenError

if TYPE_CHECKING:
    from shopgen.db.load import Loaded
    from shopgen.db.target import DbTarget
    from shopgen.schema import CatalogSchema
    from shopgen.shop_schema import ShopSchema

SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
DEFAULT_BATCH = 10_000
IF_EXISTS = ("fail", "replace", "append")


def check_if_exists(if_exists: str) -> str:
    """`if_exists` when it is one of IF_EXISTS; else one line with the choices."""
    if if_exists not in IF_EXISTS:
        raise OptionError("if_exists", f"{if_exists!r} is unknown; use one of {', '.join(IF_EXISTS)}")
    return if_exists


def is_db_target(target: object) -> bool:
    """A URL with a scheme (sqlite:///, postgresql://, mysql://, mariadb://) or a .db/.sqlite path."""
    text = str(target)  # a DbTarget prints as its URL
    return "://" in text or Path(text).suffix.lower() in SQLITE_SUFFIXES


def parse_target(target: str | Path | DbTarget) -> DbTarget:
    """Check a database URL's form without connecting."""
    from shopgen.db.target import DbTarget, parse_target

    return target if isinstance(target, DbTarget) else parse_target(target)


def check(target: str | Path | DbTarget, table: str, if_exists: str = "fail", schema: CatalogSchema | None = None) -> DbTarget:
    """Connect and check the table against `if_exists` before any row is generated; return the target."""
    from shopgen.db.ddl import check_table_name
    from shopgen.db.load import check as check_table

    parsed = parse_target(target)
    check_table_name(table)
    if schema is not None:
        check_table(parsed, table, if_exists, schema)
    return parsed


def write(
    catalog: pd.DataFrame | Iterable[pd.DataFrame],
    url: str | Path | DbTarget,
    table: str,
    *,
    schema: CatalogSchema | None = None,
    if_exists: str = "fail",
    batch_size: int = DEFAULT_BATCH,
    total: int | None = None,
    show_progress: bool = False,
    on_rows: Callable[[int], None] | None = None,
    bulk: str = "auto",
) -> Loaded:
    """Load a catalog (one frame, or frames as they are generated) into `table`, all or nothing.

    `schema` gives the table its columns, types and constraints (`synth.schema` for a generated
    catalog); without it they are inferred from the first frame (types only, no ranges or rules).
    `if_exists`: fail (default), replace or append. `bulk='insert'` makes MariaDB use INSERT instead
    of LOAD DATA LOCAL INFILE (what a server with local_infile off gets anyway). A failure of any kind
    raises ShopgenError and leaves the table as it was.
    """
    from shopgen.db.ddl import check_table_name, schema_for_frame
    from shopgen.db.load import load
    from shopgen.progress import progress_bar

    target = parse_target(url)
    check_table_name(table)
    frames: Iterator[pd.DataFrame] = iter([catalog] if isinstance(catalog, pd.DataFrame) else catalog)
    if isinstance(catalog, pd.DataFrame) and total is None:
        total = len(catalog)
    if schema is None:
        first = next(frames, None)
        if first is None or len(first) == 0:
            raise ShopgenError(f"nothing to infer table {table!r} from: the catalog is empty; pass schema=")
        schema = schema_for_frame(first, name=table)
        frames = itertools.chain([first], frames)
    with progress_bar(show_progress) as bar:
        task = bar.add_task(f"loading {table}", total=total, info=str(target.family))

        def tick(n: int) -> None:
            bar.advance(task, n)
            if on_rows is not None:
                on_rows(n)

        return load(target, table, schema, frames, if_exists=if_exists, batch_size=batch_size, on_rows=tick, bulk=bulk)


def check_shop(target: str | Path | DbTarget, shop: ShopSchema, if_exists: str = "fail") -> DbTarget:
    """Connect and check a shop's tables against `if_exists` before any row is generated; return the target.
    A shop takes fail or replace: appended rows would bring keys that collide with those already there."""
    from shopgen.db.ddl import check_table_name
    from shopgen.db.load import check_shop as check_tables
    from shopgen.db.load import shop_mode

    shop_mode(if_exists)
    parsed = parse_target(target)
    for name in shop.names:
        check_table_name(name)
    check_tables(parsed, shop, if_exists)
    return parsed


def write_shop(
    frames: Mapping[str, pd.DataFrame | Iterable[pd.DataFrame]],
    url: str | Path | DbTarget,
    shop: ShopSchema,
    *,
    if_exists: str = "fail",
    batch_size: int = DEFAULT_BATCH,
    show_progress: bool = False,
) -> list[Loaded]:
    """Load every table of a shop (a table's name -> its frame, or its frames as they are generated), all or
    nothing: the tables are made parents first with their PRIMARY and FOREIGN KEY constraints, and a row the
    keys refuse, like any other failure, raises ShopgenError and leaves every table as it was.

    `if_exists`: fail (default) or replace (every table of the shop at once). One `Loaded` per table,
    parents first.
    """
    from shopgen.db.ddl import check_table_name
    from shopgen.db.load import load_shop, shop_mode
    from shopgen.progress import progress_bar

    shop_mode(if_exists)
    target = parse_target(url)
    for name in shop.names:
        check_table_name(name)
    streams = {name: iter([f]) if isinstance(f, pd.DataFrame) else f for name, f in frames.items()}
    with progress_bar(show_progress) as bar:
        tasks = {name: bar.add_task(f"loading {name}", total=len(frames[name]) if isinstance(frames.get(name), pd.DataFrame)
                                    else None, info=str(target.family)) for name in shop.order}
        return load_shop(target, shop, streams, if_exists=if_exists, batch_size=batch_size,
                         on_rows=lambda name, n: bar.advance(tasks[name], n))


def read_table(url: str | Path | DbTarget, table: str) -> pd.DataFrame:
    """A whole table as a frame (what `validate` checks when its data is a database URL)."""
    import sqlalchemy as sa

    from shopgen.db.target import first_line

    target = parse_target(url)
    if target.family == "sqlite" and not Path(target.url.database or "").is_file():
        raise ShopgenError(f"database {target} does not exist; check the URL or run the sample / seed step first")
    engine = target.engine()
    try:
        return pd.read_sql_table(table, engine)
    except ValueError:
        raise ShopgenError(f"table {table!r} is not in {target}; check the table name") from None
    except sa.exc.SQLAlchemyError as exc:
        raise ShopgenError(f"cannot read table {table!r} from {target} ({first_line(exc)}); check the URL") from None
    finally:
        engine.dispose()


def create_table_sql(schema: CatalogSchema, table: str, dialect: str) -> str:
    """The statements that make the table `write` fills for `schema`, in `dialect` (postgresql, mariadb,
    mysql, sqlite): `CREATE TABLE`, and on SQLite the unique index that is its key."""
    from shopgen.db.ddl import check_table_name, ddl_script

    return ddl_script(schema, check_table_name(table), dialect)


def create_shop_sql(shop: ShopSchema, dialect: str) -> str:
    """The statements that make a shop's tables, parents first, with PRIMARY and FOREIGN KEY constraints."""
    from shopgen.db.ddl import shop_script

    return shop_script(shop, dialect)
