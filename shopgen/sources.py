"""Read a catalog from csv, parquet or jsonl, with errors a user can act on."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from shopgen.errors import ShopgenError

FORMATS = (".csv", ".parquet", ".jsonl")


def read_catalog(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise ShopgenError(f"input file {str(path)!r} does not exist; check the path")
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ShopgenError(f"input {str(path)!r} has an unknown format; use one of {', '.join(FORMATS)}")
    if path.stat().st_size == 0:
        raise ShopgenError(f"input file {str(path)!r} is empty; give a catalog with a header and rows")
    try:
        if suffix == ".csv":
            df = pd.read_csv(path, low_memory=False)  # one type per column, not one per chunk of rows
        elif suffix == ".parquet":
            df = pd.read_parquet(path)
        else:
            df = pd.read_json(path, lines=True, precise_float=True)  # the default parser drifts: 1.7 -> 1.7000000000000002
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ShopgenError(f"cannot read {str(path)!r} as {suffix[1:]} ({first}); check the file") from None
    if len(df) == 0:
        raise ShopgenError(f"input file {str(path)!r} has no rows; give a catalog with rows")
    if suffix == ".csv":
        _refuse_duplicate_headers(path)
    return df


def _refuse_duplicate_headers(path: Path) -> None:
    """pandas renames a second 'price' to 'price.1' without a word; two columns of one name are a mistake."""
    import csv

    try:
        with path.open(newline="", encoding="utf-8", errors="replace") as fh:
            header = next(csv.reader(fh), [])
    except csv.Error:
        return  # pandas read it; its own parser is the judge of the header's syntax
    seen: set[str] = set()
    twice = [h for h in header if h in seen or seen.add(h)]
    if twice:
        raise ShopgenError(f"{str(path)!r} has the column name(s) {sorted(set(twice))[:5]} more than once; "
                           "rename them so each column has its own name")


MAX_TABLES = 64  # a shop is a handful of tables; a folder of thousands of files is not one


def read_shop(folder: str | Path) -> dict[str, pd.DataFrame]:
    """Every csv, parquet or jsonl file directly in `folder` as a table named by its file's stem."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ShopgenError(f"{str(folder)!r} is not a folder; give a folder of csv, parquet or jsonl tables")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in FORMATS and p.is_file())
    if not files:
        raise ShopgenError(f"folder {str(folder)!r} holds no table ({', '.join(FORMATS)} files); check the path")
    if len(files) > MAX_TABLES:
        raise ShopgenError(f"folder {str(folder)!r} holds {len(files)} tables, over the {MAX_TABLES} a shop may have; "
                           "give a folder with only the shop's tables")
    stems = [p.stem for p in files]
    twice = sorted({s for s in stems if stems.count(s) > 1})
    if twice:
        raise ShopgenError(f"folder {str(folder)!r} holds two files for table {twice[0]!r}; keep one")
    return {p.stem: read_catalog(p) for p in files}
