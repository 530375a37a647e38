"""Identifier columns are not learned: they are drawn from the schema's pattern, unique where required."""

from __future__ import annotations

import re

import numpy as np

from shopgen.errors import SchemaError

_TOKEN = re.compile(r"\\(.)|\[([^\]]+)\]|([^\\\[{])|\{(\d+)(?:,(\d+))?\}")
_RANGE = re.compile(r"(.)-(.)")


def _expand(charset: str) -> list[str]:
    chars: list[str] = []
    rest = _RANGE.sub(lambda m: chars.extend(chr(c) for c in range(ord(m[1]), ord(m[2]) + 1)) or "", charset)
    return chars + [c for c in rest.replace("\\", "")]


def parse_pattern(pattern: str) -> list[tuple[list[str], int, int]]:
    """A pattern as (alphabet, min repeat, max repeat) pieces: literals, [classes] and {n} / {n,m}."""
    pieces: list[tuple[list[str], int, int]] = []
    pos = 0
    for m in _TOKEN.finditer(pattern):
        if m.start() != pos:
            break
        pos = m.end()
        escaped, charset, literal, lo, hi = m.groups()
        if lo is not None:
            if not pieces:
                break
            alphabet, _, _ = pieces.pop()
            pieces.append((alphabet, int(lo), int(hi) if hi else int(lo)))
        elif charset is not None:
            pieces.append((_expand(charset), 1, 1))
        elif escaped is not None:
            pieces.append((list("0123456789") if escaped == "d" else [escaped], 1, 1))
        else:
            if literal in "()|*+?.^$":
                break
            pieces.append(([literal], 1, 1))
    if pos != len(pattern):
        raise SchemaError(
            f"id pattern {pattern!r} uses regex features shopgen cannot generate from; "
            "use literals, [classes] and {n} or {n,m} repeats"
        )
    return pieces


def generate_ids(
    pattern: str, n: int, rng: np.random.Generator, unique: bool, seen: set[str] | None = None,
) -> list[str]:
    """`n` values matching `pattern`; with `unique`, none repeats or is already in `seen` (which grows)."""
    pieces = parse_pattern(pattern)
    out: list[str] = []
    seen = set() if seen is None else seen
    for _ in range(20):
        need = n - len(out)
        if need <= 0:
            break
        parts = []
        for alphabet, lo, hi in pieces:
            lengths = rng.integers(lo, hi + 1, size=need)
            width = int(lengths.max()) if need else 0
            chars = np.array(alphabet, dtype=object)[rng.integers(0, len(alphabet), size=(need, width))]
            parts.append(["".join(row[:k]) for row, k in zip(chars, lengths)])
        for value in ("".join(p) for p in zip(*parts)):
            if not unique or value not in seen:
                seen.add(value)
                out.append(value)
    if len(out) < n:
        raise SchemaError(f"id pattern {pattern!r} cannot make {n} unique values; widen it")
    return out[:n]
