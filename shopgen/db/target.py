"""Where a catalog goes in a database: the URL, checked before any work, and a connection to it."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from shopgen.errors import ShopgenError

# The URL schemes a user writes, and the SQLAlchemy driver each loads through. The bulk paths need
# these drivers (COPY is psycopg 3's, LOAD DATA LOCAL is PyMySQL's), so other drivers are refused.
SCHEMES = {
    "sqlite": "sqlite", "sqlite+pysqlite": "sqlite",
    "postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg", "postgresql+psycopg": "postgresql+psycopg",
    "mysql": "mysql+pymysql", "mysql+pymysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql", "mariadb+pymysql": "mariadb+pymysql",
}
CONNECT_TIMEOUT_S = 5  # connecting and the login handshake: a server that accepts and never answers fails here
IO_TIMEOUT_S = 600  # one read or write of an open connection (a batch, a commit): a hung server fails, a slow one is waited for
PG_KEEPALIVE = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 6,
                "tcp_user_timeout": IO_TIMEOUT_S * 1000}
EXAMPLES = "sqlite:///shop.db, postgresql://user@host:5432/db or mysql://user@host:3306/db"


@dataclass(frozen=True)
class DbTarget:
    """A database to write to; `str()` never shows the password."""

    url: sa.URL
    shown: str = ""  # the target as the user wrote it, password hidden

    @property
    def family(self) -> str:
        """'sqlite', 'postgresql' or 'mysql' (MariaDB included)."""
        name = self.url.get_backend_name()
        return "mysql" if name in ("mysql", "mariadb") else name

    def __str__(self) -> str:
        return self.shown or self.url.render_as_string(hide_password=True)

    def engine(self) -> sa.Engine:
        """An engine without a pool: one load, one connection, closed when done."""
        args: dict[str, Any] = {}
        if self.family == "postgresql":
            args = {"connect_timeout": CONNECT_TIMEOUT_S, **PG_KEEPALIVE}
        elif self.family == "mysql":
            # PyMySQL reads the login handshake under read_timeout: short while connecting, long once in
            args = {"connect_timeout": CONNECT_TIMEOUT_S, "read_timeout": CONNECT_TIMEOUT_S,
                    "write_timeout": CONNECT_TIMEOUT_S, "local_infile": True}
        engine = sa.create_engine(self.url, poolclass=NullPool, connect_args=args)
        if self.family == "mysql":
            sa.event.listen(engine, "connect", _longer_mysql_timeouts)
        return engine

    def connect(self) -> Any:
        """A DBAPI connection (sqlite3, psycopg or PyMySQL); a refusal becomes one line a user can act on."""
        try:
            return self.engine().raw_connection()
        except (sa.exc.DBAPIError, *driver_errors()) as exc:
            reason = first_line(getattr(exc, "orig", None) or exc)
            raise ShopgenError(
                f"cannot connect to {self} ({reason}); check that the server is running and the URL's "
                "host, port, user and database are right"
            ) from None


def _longer_mysql_timeouts(dbapi_connection: Any, _record: Any) -> None:
    """PyMySQL applies these per socket read and write; it has no public setter."""
    dbapi_connection._read_timeout = IO_TIMEOUT_S
    dbapi_connection._write_timeout = IO_TIMEOUT_S


def driver_errors() -> tuple[type[Exception], ...]:
    """What the three drivers raise (connecting does not wrap them in SQLAlchemy's errors)."""
    import psycopg
    import pymysql

    return (sqlite3.Error, psycopg.Error, pymysql.err.Error)


def first_line(exc: BaseException | None) -> str:
    text = str(exc).strip() if exc is not None else ""
    return text.splitlines()[0].strip() if text else type(exc).__name__


def parse_target(target: str | Path) -> DbTarget:
    """Check a database target's form (no connection yet): known scheme, SQLite folder present."""
    text = str(target)
    if "://" not in text:
        path = Path(text)
        if not path.parent.exists():
            raise ShopgenError(f"folder {str(path.parent)!r} for SQLite file {text!r} does not exist; create it first")
        return DbTarget(sa.URL.create("sqlite", database=str(path)), shown=text)
    scheme = text.split("://", 1)[0].lower()
    if scheme not in SCHEMES:
        raise ShopgenError(f"database URL {text!r} has an unknown scheme {scheme!r}; use {EXAMPLES}")
    try:
        url = sa.make_url(text)
    except sa.exc.ArgumentError as exc:
        raise ShopgenError(f"database URL {text!r} is malformed ({first_line(exc)}); write it like {EXAMPLES}") from None
    shown = url.render_as_string(hide_password=True)
    url = url.set(drivername=SCHEMES[scheme])
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ShopgenError(f"SQLite URL {text!r} names no file; write sqlite:///relative.db or sqlite:////absolute/path.db")
        folder = Path(url.database).parent
        if not folder.exists():
            raise ShopgenError(f"folder {str(folder)!r} for SQLite file {url.database!r} does not exist; create it first")
    return DbTarget(url, shown=shown)
