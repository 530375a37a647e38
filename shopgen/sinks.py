"""Write a catalog to csv, parquet or jsonl atomically (a temp file beside the target, then a rename),
or to a database table when the target is a URL or an SQLite file (all or nothing, see shopgen.db).

CSV is opened by spreadsheets, which run a cell that starts with = + - @ (or a tab or carriage return
before one) as a formula: `=HYPERLINK(...)` in a generated name would be a link in the analyst's sheet.
Such text cells are written with a leading apostrophe, as OWASP advises, unless `raw` is asked for.
"""

from __future__ import annotations

import csv
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from shopgen.db import is_db_target
from shopgen.errors import ShopgenError
from shopgen.sources import FORMATS
from shopgen.tempfiles import remove_stale, temp_path

if TYPE_CHECKING:
    from shopgen.db.load import Loaded
    from shopgen.db.target import DbTarget
    from shopgen.schema import CatalogSchema

FILE_IF_EXISTS = ("fail", "replace")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


SHOP_FORMATS = ("parquet", "csv", "jsonl")


def check_target(path: str | Path, if_exists: str | None = None) -> Path | DbTarget:
    """Fail before any work is done when the output cannot be written (a database URL: its form only).

    `if_exists` for a file: "replace" (the default) or "fail"; a database's choices are checked by shopgen.db.
    """
    if is_db_target(path):
        from shopgen.db import parse_target

        return parse_target(path)
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise ShopgenError(f"output {str(path)!r} has an unknown format; end it in {', '.join(FORMATS)}")
    if not path.parent.is_dir():
        raise ShopgenError(f"output folder {str(path.parent)!r} does not exist; create it first")
    if path.is_dir():
        raise ShopgenError(f"output {str(path)!r} is a folder; name a file in it, e.g. {str(path / ('catalog' + path.suffix))!r}")
    if if_exists is not None and if_exists not in FILE_IF_EXISTS:
        raise ShopgenError(f"--if-exists {if_exists!r} does not apply to a file; use {' or '.join(FILE_IF_EXISTS)}")
    if if_exists == "fail" and path.exists():
        raise ShopgenError(f"output {str(path)!r} exists; remove it, or pass --if-exists replace")
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic(path: Path, write_to: Callable[[str], None]) -> Path:
    """Write beside `path` and rename over it; a replaced file keeps its permissions (a 0600 file stays 0600)."""
    remove_stale(path)
    tmp = temp_path(path)
    mode = path.stat().st_mode & 0o777 if path.is_file() else 0o666 & ~_umask()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    os.chmod(tmp, mode)
    try:
        write_to(str(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write(
    df: pd.DataFrame, path: str | Path | DbTarget, table: str | None = None, *,
    schema: CatalogSchema | None = None, if_exists: str | None = None, show_progress: bool = False,
    raw: bool = False,
) -> Path | Loaded:
    """A catalog to csv, parquet or jsonl by extension, or to `table` of a database URL / .db file;
    the file or the table's new rows appear whole or not at all. `if_exists`: a file's "replace" (default)
    or "fail"; a table's "fail" (default), "replace" or "append". `raw`: CSV text cells as they are."""
    if is_db_target(path):
        from shopgen import db

        if not table:
            raise ShopgenError(f"writing to the database {str(path)!r} needs a table: write(catalog, url, table='products')")
        return db.write(df, path, table, schema=schema, if_exists=if_exists or "fail", show_progress=show_progress)
    path = check_target(path, if_exists)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        safe = df if raw else neutralise_formulas(df)
        return _atomic(path, lambda tmp: safe.to_csv(tmp, index=False, quoting=_csv_quoting(safe)))
    if suffix == ".parquet":
        return _atomic(path, lambda tmp: df.to_parquet(tmp, index=False))
    return _atomic(path, lambda tmp: df.to_json(tmp, orient="records", lines=True, force_ascii=False))


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Text cells a spreadsheet would run as a formula, prefixed with an apostrophe; numbers untouched."""
    out = df
    for c in df.select_dtypes(include=["object", "string"]).columns:
        text = df[c]
        risky = text.map(lambda v: isinstance(v, str) and v.startswith(FORMULA_START))
        if risky.any():
            if out is df:
                out = df.copy()
            out.loc[risky, c] = "'" + text[risky]
    return out


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


def check_shop_target(folder: str | Path, fmt: str) -> Path:
    """Fail before any work is done when a shop cannot be written to `folder` as `fmt` tables."""
    folder = Path(folder)
    if fmt not in SHOP_FORMATS:
        raise ShopgenError(f"a shop is written as {', '.join(SHOP_FORMATS)} tables, not {fmt!r}")
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ShopgenError(f"{str(folder)!r} exists and is not an empty folder; write a shop to a new folder")
    if not folder.parent.is_dir():
        raise ShopgenError(f"output folder {str(folder.parent)!r} does not exist; create it first")
    return folder


def write_shop(frames: dict[str, pd.DataFrame], folder: str | Path, fmt: str = "parquet") -> Path:
    """Every table as `<table>.<fmt>` in a new (or empty) folder, which appears whole or not at all."""
    folder = check_shop_target(folder, fmt)
    remove_stale(folder)
    tmp = temp_path(folder)
    tmp.mkdir(mode=0o777 & ~_umask())
    try:
        for table, df in frames.items():
            write(df, tmp / f"{table}.{fmt}")
        if folder.exists():
            folder.rmdir()  # empty, checked above
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder
