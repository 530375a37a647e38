"""Write a catalog to csv, parquet or jsonl atomically (a temp file beside the target, then a rename),
or to a database table when the target is a URL or an SQLite file (all or nothing, see shopgen.db)."""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from shopgen.db import is_db_target
from shopgen.errors import ShopgenError

if TYPE_CHECKING:
    from shopgen.db.load import Loaded
    from shopgen.db.target import DbTarget
    from shopgen.schema import CatalogSchema

FORMATS = (".csv", ".parquet", ".jsonl")


def check_target(path: str | Path) -> Path | DbTarget:
    """Fail before any work is done when the output cannot be written (a database URL: its form only)."""
    if is_db_target(path):
        from shopgen.db import parse_target

        return parse_target(path)
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise ShopgenError(f"output {str(path)!r} has an unknown format; end it in {', '.join(FORMATS)}")
    if not path.parent.exists():
        raise ShopgenError(f"output folder {str(path.parent)!r} does not exist; create it first")
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic(path: Path, write_to: Callable[[str], None]) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the output should look like any other file
    try:
        write_to(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write(
    df: pd.DataFrame, path: str | Path | DbTarget, table: str | None = None, *,
    schema: CatalogSchema | None = None, if_exists: str = "fail", show_progress: bool = False,
) -> Path | Loaded:
    """A catalog to csv, parquet or jsonl by extension, or to `table` of a database URL / .db file;
    the file or the table's new rows appear whole or not at all."""
    if is_db_target(path):
        from shopgen import db

        if not table:
            raise ShopgenError(f"writing to the database {str(path)!r} needs a table: write(catalog, url, table='products')")
        return db.write(df, path, table, schema=schema, if_exists=if_exists, show_progress=show_progress)
    path = check_target(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _atomic(path, lambda tmp: df.to_csv(tmp, index=False, quoting=_csv_quoting(df)))
    if suffix == ".parquet":
        return _atomic(path, lambda tmp: df.to_parquet(tmp, index=False))
    return _atomic(path, lambda tmp: df.to_json(tmp, orient="records", lines=True, force_ascii=False))


def _csv_quoting(df: pd.DataFrame) -> int:
    """Quote every text cell when one holds a carriage return: Python's csv writer quotes a cell with a
    newline but not one with a bare "\\r", which csv readers (pandas' included) take for the end of a row."""
    text = df.select_dtypes(include=["object", "string", "category"])
    has_cr = any(text[c].astype(str).str.contains("\r", regex=False).any() for c in text.columns)
    return csv.QUOTE_NONNUMERIC if has_cr else csv.QUOTE_MINIMAL


def write_text(text: str, path: str | Path) -> Path:
    path = Path(path)
    if not path.parent.exists():
        raise ShopgenError(f"output folder {str(path.parent)!r} does not exist; create it first")
    return _atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
