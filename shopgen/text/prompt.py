"""The sequence layout the GPT learns: conditions, then each text column, each closed by an end token.

    <|Category|>Shoes<|Brand|>Acme<|price|>q7<|name|>Acme Trail Runner<|end|><|description|>...<|end|>

Field markers and the end token are single special tokens. Numbers are written as their decile
within the training catalog ("q0".."q9"): a small, closed vocabulary the model learns from few rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from shopgen.schema import CatalogSchema

END = "<|end|>"
PAD = "<|pad|>"
NULL = "<|null|>"
N_BINS = 10


def marker(column: str) -> str:
    return f"<|{column}|>"


@dataclass
class PromptFormat:
    """Turns rows into conditioning strings; holds the per-column decile edges learned at fit."""

    conditions: list[str]
    text_columns: list[str]
    numeric: dict[str, list[float]]  # column -> inner decile edges

    @classmethod
    def fit(cls, schema: CatalogSchema, df: pd.DataFrame) -> PromptFormat:
        conditions = schema.conditions
        numeric = {}
        for name in conditions:
            if schema.column(name).is_numeric:
                values = pd.to_numeric(df[name], errors="coerce").dropna().to_numpy(float)
                edges = np.quantile(values, np.linspace(0, 1, N_BINS + 1)[1:-1]) if len(values) else []
                numeric[name] = [float(e) for e in edges]
        return cls(conditions=conditions, text_columns=[c.name for c in schema.text_columns], numeric=numeric)

    @property
    def special_tokens(self) -> list[str]:
        return [PAD, END, NULL] + [marker(c) for c in self.conditions + self.text_columns]

    def render_value(self, column: str, value: object) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return NULL
        if column in self.numeric:
            return f"q{int(np.searchsorted(self.numeric[column], float(value), side='right'))}"
        return str(value)

    def prompts(self, df: pd.DataFrame) -> list[str]:
        """One conditioning string per row, ending just before the first text column's marker."""
        parts = [
            [marker(c) + self.render_value(c, v) for v in df[c].tolist()] for c in self.conditions
        ]
        return ["".join(cells) for cells in zip(*parts)] if parts else [""] * len(df)

    def empty_prompt(self) -> str:
        """Every condition unknown: the prompt of the unconditional text distribution."""
        return "".join(marker(c) + NULL for c in self.conditions)

    def to_dict(self) -> dict:
        return {"conditions": self.conditions, "text_columns": self.text_columns, "numeric": self.numeric}

    @classmethod
    def from_dict(cls, raw: dict) -> PromptFormat:
        return cls(conditions=raw["conditions"], text_columns=raw["text_columns"], numeric=raw["numeric"])
