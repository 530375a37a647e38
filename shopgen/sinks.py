"""Write a catalog to csv, parquet or jsonl atomically: a temp file beside the target, then a rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from shopgen.errors import ShopgenError

FORMATS = (".csv", ".parquet", ".jsonl")


def check_target(path: str | Path) -> Path:
    """Fail before any work is done when the output cannot be written."""
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


def write(df: pd.DataFrame, path: str | Path) -> Path:
    """A catalog to csv, parquet or jsonl by extension; the target appears whole or not at all."""
    path = check_target(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _atomic(path, lambda tmp: df.to_csv(tmp, index=False))
    if suffix == ".parquet":
        return _atomic(path, lambda tmp: df.to_parquet(tmp, index=False))
    return _atomic(path, lambda tmp: df.to_json(tmp, orient="records", lines=True, force_ascii=False))


def write_text(text: str, path: str | Path) -> Path:
    path = Path(path)
    if not path.parent.exists():
        raise ShopgenError(f"output folder {str(path.parent)!r} does not exist; create it first")
    return _atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
