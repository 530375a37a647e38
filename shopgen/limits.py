"""Bounds on the work one call may ask for, checked before any model is loaded or row is drawn.

Kept apart from the synthesizer so the command line can refuse `-n 1000000000000` in a fraction of a
second, without importing torch first.
"""

from __future__ import annotations

import numpy as np

from shopgen.errors import ShopgenError

MIN_TRAINING_ROWS = 20  # fewer rows than this are a list to copy, not a distribution to learn
MAX_ROWS = 10_000_000  # `sample` holds every row in memory: ~1-2 KB a row with its text
MAX_STREAMED_ROWS = 100_000_000  # `iter_sample` holds one batch, and the primary keys it has given out


def check_rows(n: int, seed: int = 0, streamed: bool = False) -> None:
    """Refuse a row count or seed that cannot work."""
    most = MAX_STREAMED_ROWS if streamed else MAX_ROWS
    if not isinstance(n, int | np.integer) or n < 1:
        raise ShopgenError(f"asked for {n!r} rows; ask for a whole number, at least 1")
    if n > most:
        how = "in one load" if streamed else "in memory; seed a database (streamed in batches) for more"
        raise ShopgenError(f"asked for {n:,} rows, above the {most:,} shopgen writes {how}")
    if not isinstance(seed, int | np.integer) or not 0 <= seed < 2**63:
        raise ShopgenError(f"seed {seed!r} is not a whole number from 0 to 2**63 - 1; use e.g. --seed 0")


def check_training_rows(n: int) -> None:
    if n < MIN_TRAINING_ROWS:
        raise ShopgenError(f"the catalog has {n} rows; shopgen learns from at least {MIN_TRAINING_ROWS} "
                           "(a model of fewer could only repeat them)")
