"""The catalog schema: the one declaration every other part derives from.

SDV metadata and constraints, the Great Expectations suite, the text model's conditioning and the
output dtypes are all computed from a `CatalogSchema`; nothing downstream hard-codes a column name.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from shopgen.errors import SchemaError
from shopgen.expressions import Expression, ExpressionError

TYPES = ("id", "categorical", "numeric", "integer", "datetime", "text")
NUMERIC_TYPES = ("numeric", "integer")
UNITS = ("money", "percent", "count", "rating")
_COLUMN_KEYS = {
    "type", "nullable", "min", "max", "decimals", "values", "pattern", "max_length", "conditioned_on",
    "unit", "derived", "endings", "format",
}
MAX_SCHEMA_BYTES = 10 * 2**20  # a schema is a page of YAML; a bigger file is a mistake or an attack
DECIMALS_TOLERANCE = 1e-9  # relative: 5.8100000000000005 has 2 decimals (float noise), 5.8101 has 4


def within_decimals(values: np.ndarray, decimals: int) -> np.ndarray:
    """Which values have at most `decimals` decimals, float noise forgiven: one rule for infer and validate."""
    values = np.asarray(values, dtype=float)
    return np.abs(np.round(values, decimals) - values) <= DECIMALS_TOLERANCE * np.maximum(1.0, np.abs(values))


class _NoAliasLoader(yaml.SafeLoader):
    """Safe YAML without anchors and aliases: a schema never needs them, and nested aliases expand into
    billions of nodes from a few hundred bytes (the "billion laughs")."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.constructor.ConstructorError(None, None, "aliases (*name) are not allowed; write the values out", mark)
        event = self.peek_event()
        if getattr(event, "anchor", None):
            raise yaml.constructor.ConstructorError(None, None, "anchors (&name) are not allowed; write the values out", event.start_mark)
        return super().compose_node(parent, index)


def load_yaml(text: str) -> Any:
    """Safe YAML as a user's file may be read: plain data, no tags, no anchors or aliases."""
    return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 (a SafeLoader)


_SORTABLE = re.compile(r"%Y(?:[-/.]%m(?:[-/.]%d(?:[ T]%H(?::%M(?::%S(?:\.%f)?)?)?)?)?)?")
_RULE_RE = re.compile(r"^\s*(.+?)\s*(>=|<=|>|<)\s*(.+?)\s*$")
_FLIP = {">=": "<=", "<=": ">=", ">": "<", "<": ">"}

@dataclass(frozen=True)
class Column:
    """One column: its type and the constraints every generated value must meet."""

    name: str
    type: str
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    decimals: int | None = None
    values: tuple[Any, ...] | None = None
    pattern: str | None = None
    max_length: int | None = None
    conditioned_on: tuple[str, ...] = ()
    unit: str | None = None
    derived: str | None = None
    endings: tuple[tuple[str, float], ...] | None = None
    format: str | None = None  # datetime columns: how values are written (strftime)

    @property
    def is_numeric(self) -> bool:
        return self.type in NUMERIC_TYPES

    @property
    def sortable(self) -> bool:
        """A datetime format whose text sorts as its moments do (year first, then month, day, time)."""
        return self.type == "datetime" and bool(self.format) and _SORTABLE.fullmatch(self.format) is not None

    def parse_moments(self, values: pd.Series) -> pd.Series:
        """A datetime column's values as timestamps (NaT where a value does not fit the format)."""
        return pd.to_datetime(values, format=self.format, errors="coerce")

    def as_numbers(self, values: pd.Series) -> np.ndarray:
        """Values as floats, a datetime's as seconds: what a rule compares (NaN where missing)."""
        if self.type == "datetime":
            moments = self.parse_moments(values)
            return np.where(moments.isna(), np.nan, moments.to_numpy("datetime64[ns]").astype("int64") / 1e9)
        return pd.to_numeric(values, errors="coerce").to_numpy(float)

    @property
    def expression(self) -> Expression | None:
        """The parsed `derived` formula (checked when the schema was built)."""
        return Expression.parse(self.derived) if self.derived else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        for key in ("unit", "format", "pattern", "min", "max", "decimals", "max_length", "derived"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.values is not None:
            out["values"] = list(self.values)
        if self.endings is not None:
            out["endings"] = dict(self.endings)
        if self.nullable:
            out["nullable"] = True
        if self.conditioned_on:
            out["conditioned_on"] = list(self.conditioned_on)
        return out


@dataclass(frozen=True)
class Rule:
    """`high >= low` (or `>` when strict) between two numeric columns, on every row where both are set."""

    high: str
    low: str
    strict: bool = False

    @classmethod
    def parse(cls, text: str) -> Rule:
        match = _RULE_RE.match(str(text))
        if not match:
            raise SchemaError(
                f"rule {text!r} is not of the form 'a >= b' (operators: >=, >, <=, <); rewrite it"
            )
        left, op, right = match.groups()
        if op in ("<=", "<"):
            left, right, op = right, left, _FLIP[op]
        return cls(high=left, low=right, strict=op == ">")

    def __str__(self) -> str:
        return f"{self.high} {'>' if self.strict else '>='} {self.low}"


@dataclass(frozen=True)
class CatalogSchema:
    """A product catalog's columns, primary key and cross-column rules."""

    name: str
    columns: tuple[Column, ...]
    primary_key: str | None = None
    rules: tuple[Rule, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        self._check()

    # ---- lookups -------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise SchemaError(f"schema {self.name!r} has no column {name!r}; columns are {self.names}")

    def of_type(self, *types: str) -> list[Column]:
        return [c for c in self.columns if c.type in types]

    @property
    def text_columns(self) -> list[Column]:
        return self.of_type("text")

    @property
    def tabular_columns(self) -> list[Column]:
        """Columns of the tabular part: everything but ids and free text (derived columns included)."""
        return self.of_type("categorical", "numeric", "integer", "datetime")

    @property
    def learned_columns(self) -> list[Column]:
        """Tabular columns the model learns: derived ones are computed from these after sampling."""
        return [c for c in self.tabular_columns if not c.derived]

    @property
    def conditions(self) -> list[str]:
        """Non-text columns the text model is conditioned on, in first-mention order."""
        seen: list[str] = []
        for col in self.text_columns:
            for name in col.conditioned_on:
                if self.column(name).type != "text" and name not in seen:
                    seen.append(name)
        return seen

    # ---- (de)serialisation ---------------------------------------------------------------------
    @classmethod
    def from_dict(cls, raw: Any, source: str = "schema") -> CatalogSchema:
        if not isinstance(raw, dict):
            raise SchemaError(f"{source}: expected a mapping with 'name' and 'columns', got {type(raw).__name__}")
        unknown = set(raw) - {"name", "primary_key", "columns", "rules"}
        if unknown:
            raise SchemaError(f"{source}: unknown top-level key(s) {sorted(unknown)}; allowed: name, primary_key, columns, rules")
        cols = raw.get("columns")
        if not isinstance(cols, dict) or not cols:
            raise SchemaError(f"{source}: 'columns' must be a non-empty mapping of column name to spec")
        columns = []
        _scalar(raw.get("name"), source, "name")
        if raw.get("primary_key") is not None and not isinstance(raw.get("primary_key"), str):
            raise SchemaError(f"{source}: primary_key must be one column's name, got {_short(raw.get('primary_key'))}; "
                              "shopgen keys a catalog by a single id column")
        for name, spec in cols.items():
            if not isinstance(name, str | int) or isinstance(name, bool):
                raise SchemaError(f"{source}: column name {_short(name)} must be text")
            if not isinstance(spec, dict):
                raise SchemaError(f"{source}: column {name!r} must be a mapping like {{type: numeric}}")
            bad = set(spec) - _COLUMN_KEYS
            if bad:
                raise SchemaError(f"{source}: column {name!r} has unknown key(s) {sorted(map(str, bad))}; allowed: {sorted(_COLUMN_KEYS)}")
            for key in ("type", "pattern", "unit", "format"):
                _scalar(spec.get(key), source, f"column {name!r} {key}")
            if spec.get("nullable") is not None and not isinstance(spec.get("nullable"), bool):
                raise SchemaError(f"{source}: column {name!r} has nullable={_short(spec.get('nullable'))}; write true or false")
            values = spec.get("values")
            if values is not None and (not isinstance(values, list) or not values
                                       or not all(isinstance(v, str | int | float) and v == v for v in values)):
                raise SchemaError(f"{source}: column {name!r} has values={_short(values)}; give a list of plain values "
                                  "like [S, M, L] or [1, 2, 3]")
            conditioned = spec.get("conditioned_on")
            if conditioned is not None and (not isinstance(conditioned, list) or not all(isinstance(c, str) for c in conditioned)):
                raise SchemaError(f"{source}: column {name!r} has conditioned_on={_short(conditioned)}; give a list of column names")
            columns.append(Column(
                name=str(name),
                type=str(spec.get("type", "")),
                nullable=bool(spec.get("nullable", False)),
                min=_bound(spec, "min", source, name),
                max=_bound(spec, "max", source, name),
                decimals=_int(spec.get("decimals"), source, name, "decimals"),
                values=tuple(values) if values is not None else None,
                pattern=spec.get("pattern"),
                max_length=_int(spec.get("max_length"), source, name, "max_length"),
                conditioned_on=tuple(str(c) for c in spec.get("conditioned_on") or ()),
                unit=None if spec.get("unit") is None else str(spec["unit"]),
                derived=_derived(spec.get("derived"), source, name),
                endings=_endings(spec.get("endings"), source, name),
                format=None if spec.get("format") is None else str(spec["format"]),
            ))
        rules = raw.get("rules") or []
        if not isinstance(rules, list) or not all(isinstance(r, str) for r in rules):
            raise SchemaError(f"{source}: 'rules' must be a list like ['list_price >= price']")
        return cls(
            name=str(raw.get("name") or "catalog"),
            columns=tuple(columns),
            primary_key=raw.get("primary_key"),
            rules=tuple(Rule.parse(r) for r in rules),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.primary_key:
            out["primary_key"] = self.primary_key
        out["columns"] = {c.name: c.to_dict() for c in self.columns}
        if self.rules:
            out["rules"] = [str(r) for r in self.rules]
        return out

    @classmethod
    def from_yaml(cls, path: str | Path) -> CatalogSchema:
        return cls.from_dict(read_schema_yaml(path), source=str(path))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, width=120)

    # ---- checks --------------------------------------------------------------------------------
    def _check(self) -> None:
        where = f"schema {self.name!r}"
        names = self.names
        if len(set(names)) != len(names):
            raise SchemaError(f"{where}: duplicate column names")
        position = {n: i for i, n in enumerate(names)}
        for col in self.columns:
            at = f"{where}, column {col.name!r}"
            if col.type not in TYPES:
                raise SchemaError(f"{at}: unknown type {col.type!r}; use one of {', '.join(TYPES)}")
            if col.min is not None and col.max is not None and col.is_numeric and col.min > col.max:
                raise SchemaError(f"{at}: min {col.min} is above max {col.max}")
            if col.type == "datetime":
                if not col.format or "%" not in col.format:
                    raise SchemaError(f"{at}: datetime columns need a format, like '%Y-%m-%d %H:%M:%S'")
                for key in ("min", "max"):
                    bound = getattr(col, key)
                    if bound is not None and col.parse_moments(pd.Series([bound])).isna().all():
                        raise SchemaError(f"{at}: {key} {bound!r} is not written in the format {col.format!r}")
            elif (col.min is not None or col.max is not None) and not col.is_numeric:
                raise SchemaError(f"{at}: min/max apply only to numeric, integer or datetime columns")
            if col.decimals is not None and not col.is_numeric:
                raise SchemaError(f"{at}: decimals apply only to numeric or integer columns")
            if col.format is not None and col.type != "datetime":
                raise SchemaError(f"{at}: 'format' applies only to datetime columns")
            if col.pattern is not None:
                if col.type != "id":
                    raise SchemaError(f"{at}: 'pattern' applies only to id columns")
                try:
                    re.compile(col.pattern)
                except re.error as exc:
                    raise SchemaError(f"{at}: pattern {col.pattern!r} is not a valid regex ({exc})") from None
            if col.max_length is not None and (col.type != "text" or col.max_length < 1):
                raise SchemaError(f"{at}: max_length must be a positive integer on a text column")
            if col.type == "text" and col.max_length is None:
                raise SchemaError(f"{at}: text columns need max_length (the longest value to generate)")
            if col.values is not None and col.type not in ("categorical", *NUMERIC_TYPES):
                raise SchemaError(f"{at}: 'values' applies only to categorical, numeric or integer columns")
            if col.values is not None and col.is_numeric and not all(_is_number(v) for v in col.values):
                raise SchemaError(f"{at}: 'values' of a {col.type} column must all be numbers")
            if col.unit is not None and (not col.is_numeric or col.unit not in UNITS):
                raise SchemaError(f"{at}: unit {col.unit!r} is unknown or on a non-numeric column; use one of {', '.join(UNITS)} on a numeric column")
            if col.endings is not None:
                if not col.is_numeric:
                    raise SchemaError(f"{at}: 'endings' apply only to numeric or integer columns")
                for key, _ in col.endings:
                    places = len(key.split(".")[1]) if "." in key else 0
                    if col.decimals is not None and places > col.decimals or col.type == "integer" and places:
                        raise SchemaError(f"{at}: ending {key!r} has more decimals than the column allows")
            if col.derived is not None:
                if not col.is_numeric:
                    raise SchemaError(f"{at}: only numeric or integer columns can be derived")
                for dep in col.expression.columns:
                    if dep not in position or dep == col.name:
                        raise SchemaError(f"{at}: derived {col.derived!r} reads {dep!r}, which is not another column")
                    other = self.columns[position[dep]]
                    if not other.is_numeric or other.derived:
                        raise SchemaError(f"{at}: derived {col.derived!r} reads {dep!r}, which is not a learned numeric column")
            if col.conditioned_on and col.type != "text":
                raise SchemaError(f"{at}: only text columns can be conditioned_on other columns")
            for dep in col.conditioned_on:
                if dep not in position:
                    raise SchemaError(f"{at}: conditioned_on names missing column {dep!r}")
                dep_type = self.columns[position[dep]].type
                if dep_type == "id":
                    raise SchemaError(f"{at}: conditioning on id column {dep!r} teaches nothing; remove it")
                if dep_type == "text" and position[dep] >= position[col.name]:
                    raise SchemaError(
                        f"{at}: conditioned on text column {dep!r}, which is generated after it; "
                        "move it earlier or drop it from conditioned_on"
                    )
        if self.primary_key is not None:
            if self.primary_key not in position:
                raise SchemaError(f"{where}: primary_key {self.primary_key!r} is not a column")
            pk = self.columns[position[self.primary_key]]
            if pk.type != "id" or pk.nullable:
                raise SchemaError(f"{where}: primary_key {pk.name!r} must be a non-nullable id column")
        for rule in self.rules:
            for name in (rule.high, rule.low):
                if name not in position:
                    raise SchemaError(f"{where}: rule '{rule}' names missing column {name!r}")
                if not (self.columns[position[name]].is_numeric or self.columns[position[name]].sortable):
                    raise SchemaError(f"{where}: rule '{rule}' compares column {name!r}, which is neither numeric "
                                      "nor a datetime written year first")
            if len({self.columns[position[n]].type == "datetime" for n in (rule.high, rule.low)}) > 1:
                raise SchemaError(f"{where}: rule '{rule}' compares a datetime with a number; remove it")
            units = {self.columns[position[n]].unit for n in (rule.high, rule.low)}
            if len(units - {None}) > 1:
                raise SchemaError(f"{where}: rule '{rule}' compares {' with '.join(sorted(units - {None}))}; "
                                  "rules hold between columns of one unit, remove it")

    def check_frame(self, df: pd.DataFrame, source: str = "data") -> pd.DataFrame:
        """Return `df` restricted to the schema's columns with numeric columns parsed; raise on misfits."""
        if len(df) == 0:
            raise SchemaError(f"{source} has no rows; give a catalog with at least a few hundred products")
        missing = [n for n in self.names if n not in df.columns]
        if missing:
            raise SchemaError(
                f"{source} lacks column(s) {missing} named in schema {self.name!r}; "
                f"present: {list(df.columns)[:12]} — fix the schema or the data"
            )
        out = df[self.names].copy()
        for col in self.columns:
            series = out[col.name]
            if col.is_numeric:
                parsed = pd.to_numeric(series, errors="coerce")
                bad = parsed.isna() & series.notna()
                if bad.any():
                    row = int(np.flatnonzero(bad.to_numpy())[0])
                    raise SchemaError(
                        f"{source}: column {col.name!r} is {col.type} in the schema but row {row} holds "
                        f"{series.iloc[row]!r}; clean the data or declare the column categorical"
                    )
                out[col.name] = parsed.astype("float64")
            elif col.type == "datetime":
                text = series.astype(object).where(series.notna(), None)
                bad = col.parse_moments(text).isna().to_numpy() & text.notna().to_numpy()
                if bad.any():
                    row = int(np.flatnonzero(bad)[0])
                    raise SchemaError(
                        f"{source}: column {col.name!r} is a datetime written as {col.format!r} but row {row} holds "
                        f"{str(series.iloc[row])[:40]!r}; fix the value or the schema's format"
                    )
                out[col.name] = text.map(lambda v: v if v is None else str(v))
            elif col.type in ("categorical", "text", "id"):
                out[col.name] = series.astype(object).where(series.notna(), None)
            if not col.nullable and out[col.name].isna().all():
                raise SchemaError(f"{source}: column {col.name!r} is entirely empty but not nullable in the schema")
        return out

    def check_training(self, df: pd.DataFrame, source: str = "data") -> pd.DataFrame:
        """`check_frame`, and every value as validate would judge it: a model fitted on rows that break the
        schema learns values its own output may not have (and redraws them forever). A table of ids only (a shop's
        link table) is a valid schema, but not one a catalog model can learn."""
        if not self.tabular_columns and not self.text_columns:
            raise SchemaError(f"schema {self.name!r}: no columns to learn (only ids); declare the other columns' types")
        out = self.check_frame(df, source)
        for col in self.columns:
            self._check_values(col, out[col.name], source)
        pk = self.primary_key
        if pk and out[pk].duplicated().any():
            row = int(np.flatnonzero(out[pk].duplicated().to_numpy())[0])
            raise SchemaError(f"{source}: primary_key {pk!r} repeats {_short(out[pk].iloc[row], 40)} (row {row}); "
                              "keys must be unique: fix the data or drop primary_key from the schema")
        return out

    @staticmethod
    def _check_values(col: Column, values: pd.Series, source: str) -> None:
        """What validate would reject in training data, named by column, first row and fix: a model fitted on
        it would learn values its own output may not have."""
        def fail(mask: np.ndarray, what: str, fix: str) -> None:
            rows = np.flatnonzero(mask)
            if len(rows):
                raise SchemaError(f"{source}: column {col.name!r} {what} in {len(rows)} row(s), first row {int(rows[0])} "
                                  f"({_short(values.iloc[int(rows[0])], 40)}); {fix}")

        if not col.nullable:
            fail(values.isna().to_numpy(), "is empty", "fill them, drop those rows, or set nullable: true")
        if col.is_numeric:
            x = values.to_numpy(float)
            if col.min is not None:
                fail(x < col.min, f"is below min {col.min}", "fix those rows or lower min")
            if col.max is not None:
                fail(x > col.max, f"is above max {col.max}", "fix those rows or raise max")
            if col.decimals is not None and col.type == "numeric":
                fail(~np.isnan(x) & ~within_decimals(np.nan_to_num(x), col.decimals),
                     f"has more than {col.decimals} decimals", "round them or raise decimals")
            if col.type == "integer":
                fail(~np.isnan(x) & ~within_decimals(np.nan_to_num(x), 0), "is not a whole number",
                     "round them or declare the column numeric")
        if col.values is not None:
            known = set(map(str, col.values)) | {str(float(v)) for v in col.values if _is_number(v)}
            fail(values.notna().to_numpy() & ~values.map(lambda v: str(v) in known).to_numpy(),
                 f"holds a value outside its {len(col.values)} values", "add it to values or fix those rows")

    def cast(self, df: pd.DataFrame) -> pd.DataFrame:
        """Give generated columns the schema's order, rounding and dtypes."""
        out = pd.DataFrame(index=df.index)
        for col in self.columns:
            series = df[col.name]
            if col.type == "integer":
                series = pd.to_numeric(series).round()
                out[col.name] = series.astype("Int64" if col.nullable or series.isna().any() else "int64")
            elif col.type == "numeric":
                series = pd.to_numeric(series).astype("float64")
                out[col.name] = series.round(col.decimals) if col.decimals is not None else series
            else:
                out[col.name] = series.astype(object).where(series.notna(), None)
        return out.reset_index(drop=True)

    def with_columns(self, **changes: Column) -> CatalogSchema:
        return replace(self, columns=tuple(changes.get(c.name, c) for c in self.columns))


def read_schema_yaml(path: str | Path) -> Any:
    """A schema file's YAML, refused with one clear line when it is missing, huge, not UTF-8 or not YAML."""
    path = Path(path)
    if not path.is_file():
        raise SchemaError(f"schema file {str(path)!r} does not exist; pass a YAML schema or run 'shopgen schema infer DATA -o {path}'")
    if path.stat().st_size > MAX_SCHEMA_BYTES:
        raise SchemaError(f"schema file {str(path)!r} is {path.stat().st_size:,} bytes, over the {MAX_SCHEMA_BYTES:,} "
                          "a schema may be; give the YAML schema, not the data")
    try:
        return load_yaml(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise SchemaError(f"schema file {str(path)!r} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" line {where.line + 1}" if where else ""
        raise SchemaError(f"schema file {str(path)!r}{line} is not valid YAML ({getattr(exc, 'problem', exc)}); fix the syntax") from None


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _scalar(value: Any, source: str, what: str) -> None:
    if value is not None and (isinstance(value, dict | list) or not isinstance(value, str | int | float)):
        raise SchemaError(f"{source}: {what} must be a single value, got {_short(value)}")


def _number(value: Any, source: str, name: str, key: str) -> float | None:
    if value is None:
        return None
    if not _is_number(value):
        raise SchemaError(f"{source}: column {name!r} has {key}={_short(value)}; it must be a finite number")
    return float(value) if isinstance(value, float) else int(value)


def _int(value: Any, source: str, name: str, key: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SchemaError(f"{source}: column {name!r} has {key}={value!r}; it must be a whole number >= 0")
    return value


def _bound(spec: dict, key: str, source: str, name: str) -> Any:
    """min/max: a number, or for a datetime column its text in the column's format."""
    value = spec.get(key)
    if spec.get("type") == "datetime" and value is not None:
        if not isinstance(value, str):
            raise SchemaError(f"{source}: column {name!r} has {key}={value!r}; write it in the column's format, quoted")
        return value
    return _number(value, source, name, key)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _derived(value: Any, source: str, name: str) -> str | None:
    if value is None:
        return None
    try:
        return str(Expression.parse(value))
    except ExpressionError as exc:
        raise SchemaError(f"{source}: column {name!r} has derived={value!r}: {exc}") from None


def _endings(value: Any, source: str, name: str) -> tuple[tuple[str, float], ...] | None:
    """{".99": 0.4, ".00": 0.5}: the share of values ending in each, modulo 1 (".xx") or 10 (a digit)."""
    if value is None:
        return None
    ok = isinstance(value, dict) and value and all(
        isinstance(k, (str, int)) and re.fullmatch(r"\d|0?\.\d{1,6}", str(k)) and _is_number(v) and 0 <= v <= 1
        for k, v in value.items())
    if not ok or sum(value.values()) > 1 + 1e-6 or len({("." in str(k)) for k in value}) > 1:
        raise SchemaError(f"{source}: column {name!r} has endings={value!r}; give shares of one kind of ending, "
                          "like {'.99': 0.4, '.00': 0.5} (cents) or {'9': 0.6, '0': 0.3} (last digit), summing to at most 1")
    return tuple((("0" + str(k)) if str(k).startswith(".") else str(k), float(v)) for k, v in value.items())
