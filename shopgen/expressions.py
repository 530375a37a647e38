"""Arithmetic over columns, for derived columns: `100 * (1 - [Sale Price] / [List Price])`.

A schema comes from users and may be hostile, so this is a small parser of its own, never `eval`:
numbers, column names (bare words, or any name in [brackets]), + - * / and parentheses. Division by
zero gives a missing value. Length and nesting are bounded, so an expression cannot hang or blow the stack.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

MAX_LENGTH = 500
MAX_DEPTH = 32
_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d*)?|\.\d+)|\[([^\]]+)\]|([A-Za-z_][A-Za-z0-9_]*)|(.))")


class ExpressionError(ValueError):
    """The expression is not arithmetic over columns; the message says where."""


@dataclass(frozen=True)
class Expression:
    """A parsed expression: `columns` it reads, `evaluate(df)` its values, `str()` its canonical text."""

    text: str
    tree: tuple

    @classmethod
    def parse(cls, text: str) -> Expression:
        if not isinstance(text, str) or not text.strip():
            raise ExpressionError("an expression must be a non-empty string like '[price] * [quantity]'")
        if len(text) > MAX_LENGTH:
            raise ExpressionError(f"the expression is {len(text)} characters long; at most {MAX_LENGTH}")
        tokens = _tokens(text)
        tree, rest = _sum(tokens, 0)
        if rest < len(tokens):
            raise ExpressionError(f"unexpected {tokens[rest][1]!r} in {text!r}")
        return cls(text=_render(tree), tree=tree)

    @property
    def columns(self) -> list[str]:
        out: list[str] = []

        def walk(node: tuple) -> None:
            if node[0] == "col" and node[1] not in out:
                out.append(node[1])
            for child in node[2:] if node[0] == "op" else ():
                walk(child)

        walk(self.tree)
        return out

    def evaluate(self, df: pd.DataFrame) -> np.ndarray:
        """float64 values per row; missing where an input is missing or a divisor is zero."""
        with np.errstate(divide="ignore", invalid="ignore"):
            out = _eval(self.tree, df, len(df))
        out = np.asarray(out, dtype=float)
        if out.ndim == 0:
            out = np.full(len(df), float(out))
        out[~np.isfinite(out)] = np.nan
        return out

    def __str__(self) -> str:
        return self.text


def _tokens(text: str) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            break
        number, bracketed, word, other = m.groups()
        pos = m.end()
        if number is not None:
            out.append(("num", float(number)))
        elif bracketed is not None:
            out.append(("col", bracketed))
        elif word is not None:
            out.append(("col", word))
        elif other is not None and other in "+-*/()":
            out.append((other, other))
        elif other is not None and not other.isspace():
            raise ExpressionError(f"{other!r} is not allowed in {text!r}; use numbers, [columns], + - * / and ( )")
    return out


def _sum(tokens: list, i: int, depth: int = 0) -> tuple[tuple, int]:
    return _chain(tokens, i, depth, "+-", _product)


def _product(tokens: list, i: int, depth: int) -> tuple[tuple, int]:
    return _chain(tokens, i, depth, "*/", _atom)


def _chain(tokens: list, i: int, depth: int, ops: str, operand) -> tuple[tuple, int]:
    """`operand (op operand)*`, left-associative: one precedence level."""
    left, i = operand(tokens, i, depth)
    while i < len(tokens) and tokens[i][0] in ops:
        op = tokens[i][0]
        right, i = operand(tokens, i + 1, depth)
        left = ("op", op, left, right)
    return left, i


def _atom(tokens: list, i: int, depth: int) -> tuple[tuple, int]:
    if depth > MAX_DEPTH:
        raise ExpressionError(f"the expression nests deeper than {MAX_DEPTH} levels")
    if i >= len(tokens):
        raise ExpressionError("the expression ends too early")
    kind, value = tokens[i]
    if kind == "num":
        return ("num", value), i + 1
    if kind == "col":
        return ("col", value), i + 1
    if kind == "-":
        inner, i = _atom(tokens, i + 1, depth + 1)
        return ("op", "-", ("num", 0.0), inner), i
    if kind == "(":
        inner, i = _sum(tokens, i + 1, depth + 1)
        if i >= len(tokens) or tokens[i][0] != ")":
            raise ExpressionError("a '(' is never closed")
        return inner, i + 1
    raise ExpressionError(f"unexpected {value!r}")


def _eval(node: tuple, df: pd.DataFrame, n: int):
    if node[0] == "num":
        return node[1]
    if node[0] == "col":
        return pd.to_numeric(df[node[1]], errors="coerce").to_numpy(dtype=float)
    _, op, a, b = node
    x, y = _eval(a, df, n), _eval(b, df, n)
    if op == "+":
        return np.add(x, y)
    if op == "-":
        return np.subtract(x, y)
    if op == "*":
        return np.multiply(x, y)
    return np.divide(x, y)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _render(node: tuple, parent: str = "") -> str:
    if node[0] == "num":
        return _number(node[1])
    if node[0] == "col":
        return f"[{node[1]}]"
    _, op, a, b = node
    if op == "-" and a == ("num", 0.0):
        return f"-{_render(b, '*')}"
    text = f"{_render(a, op)} {op} {_render(b, op + 'r')}"
    loose = op in "+-"
    needs = (loose and parent in ("*", "/", "*r", "/r", "-r")) or (op in "*/" and parent == "/r")
    return f"({text})" if needs else text
