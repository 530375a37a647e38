"""The steps a user runs — fit, sample, validate, seed, evaluate, and the demo — each implemented once.

The command line (`cli.py`), the YAML runner (`pipeline.py`) and the Airflow operators call these
functions with typed values, so the same inputs write the same files whichever door they came through.
Each step checks every input before anything heavy loads (a typo fails in a fraction of a second, with
nothing written), opens a bundle once, and returns a result object: `to_dict()` is what `shopgen run
--json` writes and Airflow keeps as XCom, `describe()` is its one line for a log.

A failed validation or quality gate is part of the result; `check()` raises it (ValidationFailed,
GatesFailed: exit 1), after the caller has shown what it wants to show.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shopgen.errors import ShopgenError, ValidationFailed
from shopgen.options import FitOptions, TextSampling

if TYPE_CHECKING:
    import pandas as pd

    from shopgen.bundle import Bundle
    from shopgen.evaluation.report import EvaluationReport
    from shopgen.evaluation.shop_report import ShopReport
    from shopgen.inference import Inference
    from shopgen.schema import CatalogSchema
    from shopgen.shop_inference import ShopInference
    from shopgen.shop_schema import ShopSchema
    from shopgen.shop_synthesizer import ShopSampleStats
    from shopgen.synthesizer import SampleStats
    from shopgen.validation import ValidationResult

DEFAULT_SEED_BATCH = 1000  # rows generated and loaded per batch by `seed`
DEFAULT_HOLDOUT = 0.2


def _since(t0: float) -> float:
    return round(time.perf_counter() - t0, 2)


def _finite(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x  # NaN is not JSON


# ---- schema --------------------------------------------------------------------------------------
@dataclass
class InferResult:
    found: Inference | ShopInference
    output: str | None

    @property
    def schema(self) -> CatalogSchema | ShopSchema:
        return self.found.schema

    def table(self, explain: bool = False) -> str:
        """Each column's kind and the reason (a shop's keys after its tables), '?' on the doubtful ones;
        `explain` adds the evidence."""
        return self.found.table(explain)

    def describe(self) -> str:
        from shopgen.shop_schema import ShopSchema

        schema = self.schema
        if isinstance(schema, ShopSchema):
            return (f"wrote {self.output}: tables {schema.order}; foreign keys: {[str(fk) for fk in schema.foreign_keys]}; "
                    f"baskets: {[f'{t}.{c}' for t, c in schema.baskets]}")
        kinds = {t: [c.name for c in schema.of_type(t)] for t in ("id", "categorical", "numeric", "integer", "text")}
        derived = [c.name for c in schema.columns if c.derived]
        return (f"wrote {self.output}: " + "; ".join(f"{t}: {len(v)}" for t, v in kinds.items() if v)
                + f"; text: {kinds['text']}; rules: {[str(r) for r in schema.rules]}; derived: {derived}")


def infer(data: str | Path, output: str | Path | None = None, name: str | None = None) -> InferResult:
    """Guess a catalog's schema, or a shop's from a folder of tables, and say why (`table()`); written to
    `output` when given."""
    from shopgen.inference import infer_schema
    from shopgen.shop_inference import infer_shop
    from shopgen.sinks import write_text
    from shopgen.sources import read_catalog, read_shop

    if Path(data).is_dir():
        found = infer_shop(read_shop(data), name=name or Path(data).resolve().name)
    else:
        found = infer_schema(read_catalog(data), name=name or Path(data).stem)
    if output is not None:
        write_text(found.schema.to_yaml(), output)
    return InferResult(found, None if output is None else str(output))


def read_schema(path: str | Path) -> CatalogSchema | ShopSchema:
    """A YAML schema, or a bundle's: a shop's when it names tables, else a catalog's."""
    from shopgen.bundle import SCHEMA
    from shopgen.shop_schema import read_any_schema

    return read_any_schema(Path(path) / SCHEMA if Path(path).is_dir() else path)


def ddl(schema: str | Path, dialect: str = "postgresql", table: str | None = None) -> str:
    """The CREATE TABLE that `seed` runs for a YAML schema, or for a bundle's: types, NOT NULL, key, CHECKs;
    for a shop, every table in dependency order with its FOREIGN KEYs."""
    from shopgen.db import create_shop_sql, create_table_sql
    from shopgen.shop_schema import ShopSchema

    found = read_schema(schema)
    if isinstance(found, ShopSchema):
        if table is not None:
            raise ShopgenError("--table names one table; a shop schema's tables keep their own names")
        return create_shop_sql(found, dialect)
    return create_table_sql(found, table or found.name, dialect)


# ---- fit -----------------------------------------------------------------------------------------
@dataclass
class FitResult:
    bundle: str
    rows: int
    options: FitOptions
    tabular_kind: str
    tabular_epochs: int | None
    selection: dict[str, float]
    text: dict[str, Any] | None
    seconds: dict[str, float]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"step": "fit", "bundle": self.bundle, "rows": self.rows, "tabular": self.options.tabular,
                "tabular_kind": self.tabular_kind, "tabular_selection": self.selection, "preset": self.options.preset,
                "tabular_epochs": self.tabular_epochs, "text": self.text, "seconds": self.seconds,
                "warnings": self.warnings}

    def describe(self) -> str:
        text = (f"text {self.seconds['text']}s, {self.text['steps']} steps in {self.text['precision']}, "
                f"val loss {self.text['val_loss']}" if self.text else "no text columns")
        return (f"fitted {self.rows} rows in {self.seconds['total']:.0f}s (tabular {self.tabular_kind} "
                f"{self.seconds['tabular']}s, {self.tabular_epochs} epochs; {text}) -> {self.bundle}")


def fit(data: str | Path, out: str | Path, options: FitOptions | None = None, schema: str | Path | None = None,
        show_progress: bool = False) -> FitResult | ShopFitResult:
    """Learn a catalog file, or a shop from a folder of tables, and write the model bundle to `out`; the
    schema is inferred when none is given.

    With `epochs` and `text_epochs` set and time budgets that are not reached, training is deterministic
    for a seed, so two runs give the same bundle contents."""
    from shopgen.bundle import check_bundle_target
    from shopgen.sources import read_catalog

    t0 = time.perf_counter()
    options = (options or FitOptions()).check()
    check_bundle_target(out)
    if Path(data).is_dir():
        return _fit_shop(Path(data), out, options, schema, show_progress, t0)
    cat = _schema_of(schema, "catalog") if schema else None
    df = read_catalog(data)
    if cat is None:
        from shopgen.inference import infer_schema

        cat = infer_schema(df, name=Path(data).stem).schema
    from shopgen.synthesizer import CatalogSynthesizer

    synth = CatalogSynthesizer(cat, options, show_progress=show_progress).fit(df, source=str(data))
    synth.save(out)
    return FitResult(
        bundle=str(out), rows=synth.n_training_rows_, options=options, tabular_kind=synth.tabular_model_.kind_,
        tabular_epochs=getattr(synth.tabular_model_, "epochs_", None), selection=synth.tabular_model_.selection_,
        text=_text_summary(synth), seconds={**synth.fit_seconds_, "total": _since(t0)}, warnings=list(synth.fit_warnings_),
    )


def _text_summary(synth: Any) -> dict[str, Any] | None:
    stats = synth.text_model_.stats_ if synth.text_model_ is not None else None
    return None if stats is None else {"steps": stats.steps, "epochs": stats.epochs, "val_loss": _finite(stats.val_loss),
                                       "stopped_by": stats.stopped_by, "precision": stats.precision}


def _schema_of(path: str | Path, kind: str) -> CatalogSchema | ShopSchema:
    """A schema file that must be a catalog's (one table) or a shop's (tables), with a line saying which it is not."""
    from shopgen.shop_schema import ShopSchema

    found = read_schema(path)
    if isinstance(found, ShopSchema) != (kind == "shop"):
        given = "a shop's (it names tables)" if isinstance(found, ShopSchema) else "one catalog's"
        want = "a folder of tables" if kind == "shop" else "one catalog file"
        other = "one catalog file" if kind == "shop" else "a folder of tables"
        raise ShopgenError(f"schema {str(path)!r} is {given}, so the data must be {other}, not {want}")
    return found


def _read_shop(folder: str | Path, schema: str | Path | ShopSchema | None) -> tuple[ShopSchema, dict[str, pd.DataFrame]]:
    """A folder's tables and the shop schema (a file, a bundle's, one already read, or inferred from the
    tables), with every table the schema names present; only those are kept."""
    from shopgen.shop_schema import ShopSchema
    from shopgen.sources import read_shop

    frames = read_shop(folder)
    if isinstance(schema, ShopSchema):
        shop = schema
    elif schema:
        shop = _schema_of(schema, "shop")
    else:
        from shopgen.shop_inference import infer_shop

        shop = infer_shop(frames, name=Path(folder).resolve().name).schema
    missing = sorted(set(shop.names) - set(frames))
    if missing:
        raise ShopgenError(f"folder {str(folder)!r} lacks the table(s) {missing} the schema names; add {missing[0]}.csv")
    return shop, {t: frames[t] for t in shop.order}


@dataclass
class ShopFitResult:
    bundle: str
    rows: dict[str, int]
    options: FitOptions
    tables: dict[str, dict[str, Any]]
    seconds: dict[str, float]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"step": "fit", "bundle": self.bundle, "rows": self.rows, "tabular": self.options.tabular,
                "preset": self.options.preset, "tables": self.tables, "seconds": self.seconds, "warnings": self.warnings}

    def describe(self) -> str:
        rows = ", ".join(f"{t} {n:,}" for t, n in self.rows.items())
        models = "; ".join(f"{t}: {m['tabular_kind']}" + (f" + text ({m['text']['steps']} steps)" if m["text"] else "")
                           for t, m in self.tables.items())
        return f"fitted a shop of {rows} rows in {self.seconds['total']:.0f}s ({models}; purchases) -> {self.bundle}"


def _fit_shop(folder: Path, out: str | Path, options: FitOptions, schema: str | Path | None, show_progress: bool,
              t0: float) -> ShopFitResult:
    from shopgen.shop_synthesizer import ShopSynthesizer

    shop, frames = _read_shop(folder, schema)
    synth = ShopSynthesizer(shop, options, show_progress=show_progress).fit(frames)
    synth.save(out)
    tables = {t: {"tabular_kind": m.tabular_model_.kind_, "tabular_epochs": getattr(m.tabular_model_, "epochs_", None),
                  "text": _text_summary(m), "seconds": m.fit_seconds_} for t, m in synth.table_models_.items()}
    warnings = [f"{t}: {w}" for t, m in synth.table_models_.items() for w in m.fit_warnings_]
    return ShopFitResult(str(out), {t: len(frames[t]) for t in shop.order}, options, tables,
                         {"total": _since(t0)}, warnings)


# ---- sample --------------------------------------------------------------------------------------
@dataclass
class SampleResult:
    output: str
    table: str | None
    rows: int
    seed: int
    conditions: dict[str, Any]
    stats: SampleStats
    seconds: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        s = self.stats
        return {
            "step": "sample", "output": self.output, "table": self.table, "rows": self.rows, "seed": self.seed,
            "conditions": {k: list(v) if isinstance(v, tuple) else v for k, v in self.conditions.items()},
            "validation": {"success": True,  # sample() returns only rows that passed every expectation, or raises
                           "summary": self.validation_summary(),
                           "drawn": s.drawn, "invalid": s.invalid, "copies_redrawn": s.copies_redrawn},
            "stats": s.to_dict(), "seconds": self.seconds,
        }

    def validation_summary(self) -> str:
        s = self.stats
        return (f"{self.rows} rows passed all expectations; {s.invalid} of {s.drawn} drawn rows failed and were "
                f"redrawn in {s.rounds} round(s), {s.copies_redrawn} texts redrawn for copying training text")

    @property
    def where(self) -> str:
        return self.output if self.table is None else f"table {self.table!r} in {self.output}"

    def describe(self) -> str:
        precision = f"; text matmuls in {self.stats.text_precision}" if self.stats.text_precision else ""
        return f"wrote {self.rows} valid rows to {self.where} in {self.seconds['total']:.1f}s ({self.validation_summary()}{precision})"

    def notes(self) -> list[str]:
        """What a user should know about the rows written: values only a few training rows carried."""
        return [f"{count} rows carry a {column!r} value that fewer than five training rows had "
                "(a name of one real product or seller)"
                for column, count in self.stats.rare_level_copies.items() if count]


def sample(
    bundle: str | Path, n: int, output: str | Path, *, seed: int = 0,
    conditions: Mapping[str, Any] | list[str] | None = None, text: TextSampling | None = None,
    table: str | None = None, if_exists: str | None = None, csv_raw: bool = False,
    create_folder: bool = False, products: str = "real", table_format: str = "parquet", show_progress: bool = False,
) -> SampleResult | ShopSampleResult:
    """`n` valid rows from `bundle`, written atomically to a file (.csv, .parquet, .jsonl) or a database
    URL (`table`: default the schema's name). Same bundle, seed and text options: same rows.

    A shop's bundle writes `n` new customers with their purchases, and the products, as a folder of
    `table_format` tables or every table of a database; `products`: the real catalog (real) or new products (new).

    `conditions`: {"category": "Shoes", "price": (10, 50)} or ["category=Shoes", "price=10..50"].
    `if_exists`: a file's replace (default) or fail; a table's fail (default), replace or append.
    `create_folder`: make the output's folder (a pipeline owns its work folder); else it must exist."""
    from shopgen.bundle import open_bundle
    from shopgen.db import is_db_target
    from shopgen.limits import check_rows
    from shopgen.sinks import check_target

    t0 = time.perf_counter()
    check_rows(n, seed)
    text = (text or TextSampling()).check()
    output = str(output)
    if create_folder and not is_db_target(output):
        Path(output).parent.mkdir(parents=True, exist_ok=True)
    folder = not is_db_target(output) and (output.endswith(("/", "\\")) or Path(output).is_dir() or not Path(output).suffix)
    if not folder:
        check_target(output, if_exists)  # a bad file name or format fails before the bundle is read
    opened = open_bundle(bundle)
    if opened.is_shop:
        if not folder and not is_db_target(output):
            raise ShopgenError(f"output {output!r} names a file; a shop's bundle writes a folder of tables (like "
                               "shop_out/) or every table of a database URL")
        return _sample_shop(opened, n, output, seed=seed, products=products, text=text, fmt=table_format, if_exists=if_exists,
                            refused={"conditions": conditions, "table": table}, show_progress=show_progress, t0=t0)
    target = check_target(output, if_exists)
    conds = _conditions(conditions, opened.schema)
    if not isinstance(target, Path):
        from shopgen.db import check

        table = table or opened.schema.name
        check(target, table, if_exists or "fail", opened.schema)  # connection and table state, before generating
    else:
        table = None
    from shopgen.sinks import write
    from shopgen.synthesizer import CatalogSynthesizer

    synth = CatalogSynthesizer.load(opened, show_progress=show_progress)
    catalog, stats = synth.sample(n, seed=seed, conditions=conds, text=text)
    t1 = time.perf_counter()
    write(catalog, target, table, schema=synth.schema, if_exists=if_exists, show_progress=show_progress, raw=csv_raw)
    return SampleResult(output=str(target), table=table, rows=len(catalog), seed=seed, conditions=dict(conds or {}),
                        stats=stats, seconds={"sample": round(t1 - t0, 2), "write": _since(t1), "total": _since(t0)})


@dataclass
class ShopSampleResult:
    output: str
    rows: dict[str, int]
    seed: int
    products: str
    stats: ShopSampleStats
    seconds: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"step": "sample", "output": self.output, "rows": self.rows, "seed": self.seed,
                "products": self.products, "stats": self.stats.to_dict(), "seconds": self.seconds}

    def notes(self) -> list[str]:
        """What a user should know about the tables written: values only a few training rows carried."""
        return [f"{table}: {count} rows carry a {column!r} value that fewer than five training rows had"
                for table, stats in self.stats.tables.items() for column, count in stats.rare_level_copies.items() if count]

    def describe(self) -> str:
        rows = ", ".join(f"{t} {n:,}" for t, n in self.rows.items())
        return (f"wrote a shop of {rows} rows ({self.products} products) to {self.output} in "
                f"{self.seconds['total']:.1f}s; every foreign key resolves and every rollup is computed from the "
                f"lines; {self.stats.customers_redrawn} customers redrawn for repeating a real customer's products")


def _sample_shop(opened: Bundle, n: int, output: str, *, seed: int, products: str, text: TextSampling, fmt: str,
                 if_exists: str | None, refused: dict[str, Any], show_progress: bool, t0: float) -> ShopSampleResult:
    """A shop's tables to a new folder, or to a database all or nothing (db.write_shop)."""
    from shopgen.db import is_db_target
    from shopgen.shop_synthesizer import ShopSynthesizer, check_products
    from shopgen.sinks import check_shop_target, write_shop

    given = [k for k, v in refused.items() if v]
    if given:
        raise ShopgenError(f"{given[0]} applies to one catalog's bundle; a shop's bundle writes every table of the shop")
    check_products(products)
    if is_db_target(output):
        from shopgen.db import check_shop, parse_target

        target = parse_target(output)
        check_shop(target, opened.schema, if_exists or "fail")
    else:
        if if_exists not in (None, "fail"):
            raise ShopgenError(f"--if-exists {if_exists!r} does not apply to a shop's folder: it is always written new")
        target = check_shop_target(output, fmt)
    synth = ShopSynthesizer.load(opened, show_progress=show_progress)
    tables, stats = synth.sample(n, seed=seed, products=products, text=text)
    t1 = time.perf_counter()
    if is_db_target(output):
        from shopgen.db import write_shop as db_write_shop

        db_write_shop(tables, target, opened.schema, if_exists=if_exists or "fail", show_progress=show_progress)
    else:
        write_shop(tables, target, fmt)
    return ShopSampleResult(str(target), {t: len(f) for t, f in tables.items()}, seed, products, stats,
                            {"sample": round(t1 - t0, 2), "write": _since(t1), "total": _since(t0)})


def _conditions(value: Mapping[str, Any] | list[str] | str | None, schema: CatalogSchema) -> dict[str, Any] | None:
    """{'category': 'Shoes', 'price': [10, 50]} (YAML / Python) or ['category=Shoes', 'price=10..50'] (CLI form)."""
    from shopgen.conditions import check, parse_where

    if value is None or (isinstance(value, (str, list, tuple, Mapping)) and len(value) == 0):
        return None
    if isinstance(value, str):
        value = [value]
    if isinstance(value, Mapping):
        return check({k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}, schema)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return parse_where(list(value), schema)
    raise ShopgenError(f"conditions {value!r}: write a mapping like {{category: Shoes, price: [10, 50]}} "
                       "or a list like ['category=Shoes', 'price=10..50']")


# ---- validate ------------------------------------------------------------------------------------
@dataclass
class ValidateResult:
    data: str
    validation: ValidationResult
    seconds: dict[str, float]

    @property
    def success(self) -> bool:
        return self.validation.success

    def to_dict(self) -> dict[str, Any]:
        v = self.validation
        return {"step": "validate", "data": self.data, "success": v.success, "rows": v.n_rows,
                "expectations": v.n_expectations, "failures": dict(v.failures), "summary": v.summary(),
                "seconds": self.seconds}

    def describe(self) -> str:
        return f"{'PASS' if self.success else 'FAIL'} {self.data}: {self.validation.summary()}"

    def lines(self) -> list[str]:
        """One line per expectation, then the verdict."""
        v = self.validation
        out = [f"FAIL  {label}: {v.failures[label]} rows, e.g. {v.examples.get(label, [])}" if label in v.failures
               else f"ok    {label}" for label in v.labels]
        return [*out, ("PASS  " if v.success else "FAIL  ") + v.summary()]

    def check(self) -> ValidateResult:
        if not self.success:
            raise ValidationFailed(f"{self.data} fails validation: {self.validation.summary()}")
        return self


def validate(data: str | Path, schema: str | Path, table: str | None = None) -> ValidateResult | ShopValidateResult:
    """Check a catalog file, or a database table when `data` is a URL (`table`: default the schema's name),
    against the schema's expectations; a folder of a shop's tables against a shop schema, keys and rollups
    included. The result says what failed; `check()` raises it."""
    from shopgen.validation import validate as run_validation

    t0 = time.perf_counter()
    if Path(str(data)).is_dir():
        return _validate_shop(Path(data), schema, table, t0)
    cat = _schema_of(schema, "catalog")
    df = _read(str(data), table, cat)
    return ValidateResult(str(data), run_validation(df, cat), {"total": _since(t0)})


@dataclass
class ShopValidateResult:
    data: str
    tables: dict[str, ValidationResult]
    seconds: dict[str, float]

    @property
    def success(self) -> bool:
        return all(v.success for v in self.tables.values())

    def summary(self) -> str:
        failed = [t for t, v in self.tables.items() if not v.success]
        rows = sum(v.n_rows for v in self.tables.values())
        checks = sum(v.n_expectations for v in self.tables.values())
        if not failed:
            return f"{rows} rows in {len(self.tables)} tables passed all {checks} expectations, keys and rollups included"
        return "; ".join(f"{t}: {self.tables[t].summary()}" for t in failed)

    def to_dict(self) -> dict[str, Any]:
        return {"step": "validate", "data": self.data, "success": self.success, "summary": self.summary(),
                "tables": {t: {"success": v.success, "rows": v.n_rows, "expectations": v.n_expectations,
                               "failures": dict(v.failures)} for t, v in self.tables.items()},
                "seconds": self.seconds}

    def describe(self) -> str:
        return f"{'PASS' if self.success else 'FAIL'} {self.data}: {self.summary()}"

    def lines(self) -> list[str]:
        """One line per expectation of each table, then the verdict."""
        out = [f"FAIL  {t}.{label}: {v.failures[label]} rows, e.g. {v.examples.get(label, [])}" if label in v.failures
               else f"ok    {t}.{label}" for t, v in self.tables.items() for label in v.labels]
        return [*out, ("PASS  " if self.success else "FAIL  ") + self.summary()]

    def check(self) -> ShopValidateResult:
        if not self.success:
            raise ValidationFailed(f"{self.data} fails validation: {self.summary()}")
        return self


def _validate_shop(folder: Path, schema: str | Path, table: str | None, t0: float) -> ShopValidateResult:
    from shopgen.validation import validate_shop

    if table is not None:
        raise ShopgenError("--table names one table; a shop's folder is checked table by table")
    shop, frames = _read_shop(folder, _schema_of(schema, "shop"))
    return ShopValidateResult(str(folder), validate_shop(frames, shop), {"total": _since(t0)})


def _read(data: str, table: str | None, schema: CatalogSchema) -> pd.DataFrame:
    """A catalog from a file, or from a table when `data` is a database URL."""
    from shopgen.db import is_db_target, read_table
    from shopgen.sources import read_catalog

    return read_table(data, table or schema.name) if is_db_target(data) else read_catalog(data)


# ---- seed ----------------------------------------------------------------------------------------
@dataclass
class SeedResult:
    db: str
    table: str
    rows: int
    source: dict[str, Any]
    method: str
    seconds: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"step": "seed", "db": self.db, "table": self.table, "rows": self.rows, **self.source,
                "method": self.method, "seconds": self.seconds}

    def describe(self) -> str:
        s = self.seconds
        return (f"seeded {self.rows} valid rows into table {self.table!r} in {self.db} in {s['total']:.1f}s "
                f"(generating {s['generate']:.1f}s, loading {s['load']:.1f}s through {self.method})")


def seed(
    db: str | Path, table: str | None = None, *, bundle: str | Path | None = None, rows: int | None = None,
    data: str | Path | None = None, schema: str | Path | None = None, if_exists: str = "fail", seed: int = 0,
    batch_size: int = DEFAULT_SEED_BATCH, products: str = "real", show_progress: bool = False,
) -> SeedResult | ShopSeedResult:
    """Fill a database table, all or nothing. Either generate (`bundle` + `rows`, streamed in batches of
    `batch_size`; the same seed and batch size give the same rows) or load a catalog file already made
    (`data`, checked against `schema`, default the bundle's, which also gives the table its types and
    constraints). `table`: default the schema's name, else the file's stem.

    A shop (a shop's bundle, or `data` a folder of its tables) fills every table, parents first, with its
    PRIMARY and FOREIGN KEYs, all or nothing: `rows` new customers with their purchases, over the real or
    new `products`."""
    from shopgen.db import check, check_if_exists, parse_target
    from shopgen.db import write as db_write
    from shopgen.db.ddl import check_table_name
    from shopgen.limits import check_rows

    t0 = time.perf_counter()
    if (bundle is None) == (data is None) or (data is None and rows is None):
        raise ShopgenError("seed needs either bundle and rows (generate) or data (load a catalog file)")
    check_if_exists(if_exists)
    opened = None
    if bundle is not None:
        from shopgen.bundle import open_bundle

        opened = open_bundle(bundle)
    if (opened is not None and opened.is_shop) or (data is not None and Path(data).is_dir()):
        return _seed_shop(db, table, opened, rows, data, schema, if_exists, seed, products, batch_size, show_progress, t0)
    if data is None:
        check_rows(rows, seed, streamed=True)
        if batch_size < 1:
            raise ShopgenError(f"batch_size {batch_size} is below 1; use e.g. {DEFAULT_SEED_BATCH}")
    target = parse_target(str(db))
    cat = _schema_of(schema, "catalog") if schema else (opened.schema if opened else None)
    table = check_table_name(table or (cat.name if cat else Path(str(data)).stem))
    if data is not None:
        from shopgen.sources import read_catalog

        frame = read_catalog(data)
        if cat is not None:
            frame = cat.check_frame(frame, source=str(data))
            check(target, table, if_exists, cat)
        loaded = db_write(frame, target, table, schema=cat, if_exists=if_exists, show_progress=show_progress)
        source: dict[str, Any] = {"data": str(data)}
    else:
        check(target, table, if_exists, cat)  # before the model loads: a doomed seed fails in a second
        from shopgen.synthesizer import CatalogSynthesizer

        synth = CatalogSynthesizer.load(opened, show_progress=False)
        loaded = db_write(synth.iter_sample(rows, seed, batch_size), target, table, schema=synth.schema,
                          if_exists=if_exists, batch_size=batch_size, total=rows, show_progress=show_progress)
        source = {"bundle": str(bundle), "seed": seed}
    return SeedResult(db=str(target), table=table, rows=loaded.rows, source=source, method=loaded.method,
                      seconds={"generate": round(loaded.input_seconds, 2),
                               "load": round(loaded.seconds - loaded.input_seconds, 2), "total": _since(t0)})


@dataclass
class ShopSeedResult:
    db: str
    rows: dict[str, int]
    source: dict[str, Any]
    seconds: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"step": "seed", "db": self.db, "rows": self.rows, **self.source, "seconds": self.seconds}

    def describe(self) -> str:
        rows = ", ".join(f"{t} {n:,}" for t, n in self.rows.items())
        s = self.seconds
        return (f"seeded a shop of {rows} rows into {self.db} in {s['total']:.1f}s (generating {s['generate']:.1f}s, "
                f"loading {s['load']:.1f}s), with every primary and foreign key declared")


def _seed_shop(db: str | Path, table: str | None, opened: Bundle | None, rows: int | None, data: str | Path | None,
               schema: str | Path | None, if_exists: str, seed: int, products: str, batch_size: int,
               show_progress: bool, t0: float) -> ShopSeedResult:
    from shopgen.db import check_shop, parse_target, write_shop
    from shopgen.limits import check_rows

    if table is not None:
        raise ShopgenError("--table names one table; a shop's tables keep their own names")
    target = parse_target(str(db))
    if data is not None:
        shop, frames = _read_shop(data, schema or (opened.schema if opened is not None else None))
        frames = {t: shop.table(t).check_frame(frame, source=f"{data}/{t}") for t, frame in frames.items()}
        check_shop(target, shop, if_exists)
        source: dict[str, Any] = {"data": str(data)}
    else:
        from shopgen.shop_synthesizer import ShopSynthesizer, check_products

        check_rows(rows, seed)
        check_products(products)
        shop = opened.schema
        check_shop(target, shop, if_exists)  # before the models load: a doomed seed fails in a second
        frames = ShopSynthesizer.load(opened, show_progress=show_progress).sample(rows, seed=seed, products=products).tables
        source = {"bundle": str(opened.path), "seed": seed, "products": products}
    t1 = time.perf_counter()
    loaded = write_shop(frames, target, shop, if_exists=if_exists, batch_size=batch_size, show_progress=show_progress)
    return ShopSeedResult(str(target), {x.table: x.rows for x in loaded}, source,
                          {"generate": round(t1 - t0, 2), "load": _since(t1), "total": _since(t0)})


# ---- evaluate ------------------------------------------------------------------------------------
@dataclass
class EvaluateResult:
    report: EvaluationReport | ShopReport
    html: str | None
    json: str | None
    gates: dict[str, dict[str, float]]
    failed: list[str]
    seconds: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        scores = self.report.to_dict()["scores"]
        keys = [*self.report.headline, *self.gates["minimum"], *self.gates["maximum"]]
        return {"step": "evaluate", "report": self.html, "json": self.json, "rows": self.report.sizes,
                "scores": {k: scores[k] for k in keys if k in scores}, "summary": self.report.summary(),
                "gates": {"checked": self.checked, "failed": self.failed}, "seconds": self.seconds}

    @property
    def checked(self) -> int:
        return len(self.gates["minimum"]) + len(self.gates["maximum"])

    def describe(self) -> str:
        written = ", ".join(p for p in (self.html, self.json) if p)
        return (f"evaluated {self.report.counts()} in {self.seconds['total']:.1f}s"
                + (f" -> {written}" if written else ""))

    def check(self) -> EvaluateResult:
        from shopgen.evaluation.gates import GatesFailed

        if self.failed:
            raise GatesFailed("gates failed: " + "; ".join(self.failed))
        return self


def evaluate(
    real: str | Path, synthetic: str | Path, schema: str | Path, *, report: str | Path | None = None,
    json: str | Path | None = None, holdout: str | float | None = None,
    minimum: Mapping[str, float] | None = None, maximum: Mapping[str, float] | None = None,
    target: str | None = None, seed: int = 0, create_folders: bool = False,
) -> EvaluateResult:
    """Score `synthetic` against `real` (fidelity, text, privacy, utility), write the HTML and JSON
    reports, and say which gates (e.g. minimum={'quality': 0.8}) it missed; `check()` raises them.
    Two folders of a shop's tables (with a shop schema) get the shop's report: fidelity of the purchase log,
    recommenders trained on it and tested on held-out real customers, table quality, privacy.

    `holdout`: real rows the synthesizer never saw, a fraction of `real` (default 0.2; exact when the
    synthesizer was fitted on the rest) or a file of hold-out rows (then `real` is the training rows)."""
    from shopgen.evaluation.gates import check_names
    from shopgen.limits import check_rows
    from shopgen.sources import read_catalog

    t0 = time.perf_counter()
    check_rows(1, seed)
    mins, maxs = dict(minimum or {}), dict(maximum or {})
    if Path(str(real)).is_dir():
        return _evaluate_shop(Path(real), Path(synthetic), schema, report, json, holdout, mins, maxs, target, seed,
                              create_folders, t0)
    cat = _schema_of(schema, "catalog")
    from shopgen.evaluation.scores import possible_names

    valid = possible_names(cat)
    check_names(mins, valid, "minimum")
    check_names(maxs, valid, "maximum")
    html = _report_path(report, ".html", "report", create_folders)
    json_path = _report_path(json, ".json", "json", create_folders)
    fraction, holdout_file = _holdout(holdout)
    if target is not None:
        cat.column(target)
    real_df, synth_df = read_catalog(real), read_catalog(synthetic)
    from shopgen.evaluation.report import evaluate as run_evaluation

    split = {"holdout": read_catalog(holdout_file)} if holdout_file else {"holdout_fraction": fraction}
    result = run_evaluation(real_df, synth_df, cat, target=target, seed=seed, **split)
    return _written(result, html, json_path, mins, maxs, t0)


def _written(report: EvaluationReport | ShopReport, html: Path | None, json_path: Path | None, mins: dict[str, float],
             maxs: dict[str, float], t0: float) -> EvaluateResult:
    """The report written where asked, and its gates checked."""
    if html:
        report.to_html(html)
    if json_path:
        report.to_json(json_path)
    return EvaluateResult(report, str(html) if html else None, str(json_path) if json_path else None,
                          {"minimum": mins, "maximum": maxs}, report.check(mins, maxs), {"total": _since(t0)})


def _evaluate_shop(real: Path, synthetic: Path, schema: str | Path, report: str | Path | None, json: str | Path | None,
                   holdout: str | float | None, mins: dict[str, float], maxs: dict[str, float], target: str | None,
                   seed: int, create_folders: bool, t0: float) -> EvaluateResult:
    """A synthetic shop's folder against the real shop's: fidelity, recommenders, tables, privacy (shop_report)."""
    from shopgen.evaluation.gates import check_names
    from shopgen.evaluation.shop_report import evaluate_shop, shop_score_names

    if target is not None:
        raise ShopgenError("--target names a catalog column to predict; a shop is scored by its recommenders")
    fraction, holdout_file = _holdout(holdout)
    if holdout_file is not None:
        raise ShopgenError("a shop's hold-out is a fraction of its customers, like 0.2, not a file")
    shop = _schema_of(schema, "shop")
    if not synthetic.is_dir():
        raise ShopgenError(f"synthetic {str(synthetic)!r} is not a folder; give the folder `shopgen sample` wrote for the shop")
    html = _report_path(report, ".html", "report", create_folders)
    json_path = _report_path(json, ".json", "json", create_folders)
    (_, real_frames), (_, synthetic_frames) = _read_shop(real, shop), _read_shop(synthetic, shop)
    valid = shop_score_names(shop, frames=real_frames)
    check_names(mins, valid, "minimum")
    check_names(maxs, valid, "maximum")
    return _written(evaluate_shop(real_frames, synthetic_frames, shop, holdout=fraction, seed=seed), html, json_path,
                    mins, maxs, t0)


def _report_path(path: str | Path | None, suffix: str, option: str, create_folder: bool) -> Path | None:
    if path is None:
        return None
    path = Path(path)
    if path.suffix.lower() != suffix:
        raise ShopgenError(f"{option} {str(path)!r} must end in {suffix}")
    if create_folder:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.parent.is_dir():
        raise ShopgenError(f"{option} folder {str(path.parent)!r} does not exist; create it first")
    return path


def _holdout(value: str | float | Path | None) -> tuple[float | None, Path | None]:
    """0.2 or '0.2': a fraction of the real rows; anything else: a file of real rows the synthesizer never saw."""
    if value is None:
        return DEFAULT_HOLDOUT, None
    try:
        fraction = float(value)
    except (TypeError, ValueError):
        path = Path(str(value))
        if not path.is_file():
            raise ShopgenError(f"holdout {str(value)!r} is neither a fraction like 0.2 nor an existing file of "
                               "real hold-out rows") from None
        return None, path
    if not 0 < fraction < 1:
        raise ShopgenError(f"holdout {value} is outside (0, 1); use a fraction like 0.2 or a file")
    return fraction, None


# ---- demo ----------------------------------------------------------------------------------------
@dataclass
class DemoResult:
    folder: str
    training_rows: int
    catalog: pd.DataFrame
    validation: ValidationResult
    text_columns: list[str]
    seconds: dict[str, float]

    def lines(self, shown: int = 5) -> list[str]:
        out = [f"{min(shown, len(self.catalog))} of {len(self.catalog)} generated products:"]
        for record in self.catalog.head(shown).to_dict("records"):
            text = {c: record.pop(c) for c in self.text_columns}
            out.append("  " + " | ".join(f"{k}={v}" for k, v in record.items()))
            out += [f"    {name}: {value}" for name, value in text.items()]
        folder = Path(self.folder)
        return [*out,
                f"fit    {self.seconds['fit']:.0f}s on {self.training_rows} sample products -> {folder / 'model'}",
                f"sample {self.seconds['sample']:.0f}s -> {folder / 'catalog.csv'} ({len(self.catalog)} rows)",
                ("PASS  " if self.validation.success else "FAIL  ") + self.validation.summary(),
                f"next: shopgen sample {folder / 'model'} -n 5000 -o catalog.parquet --seed 1"]


def demo(out: str | Path = "demo_output", rows: int = 1000, options: FitOptions | None = None,
         show_progress: bool = False) -> DemoResult:
    """Make the demo catalog (seeded, offline), fit the `fast` preset on it, sample `rows`, validate them;
    everything lands in `out`: products.csv, schema.yaml, model/, catalog.csv."""
    from shopgen import demo as demo_catalog
    from shopgen.bundle import check_bundle_target
    from shopgen.limits import check_rows
    from shopgen.sinks import write, write_text
    from shopgen.sources import read_catalog
    from shopgen.validation import validate as run_validation

    check_rows(rows)
    options = (options or FitOptions()).check()
    folder = Path(out)
    check_bundle_target(folder / "model")
    folder.mkdir(parents=True, exist_ok=True)
    cat = demo_catalog.schema()
    demo_catalog.write_csv(demo_catalog.build_catalog(), folder / "products.csv")
    df = read_catalog(folder / "products.csv")  # the rows as a user's file gives them
    write_text(cat.to_yaml(), folder / "schema.yaml")
    from shopgen.synthesizer import CatalogSynthesizer

    t0 = time.perf_counter()
    synth = CatalogSynthesizer(cat, options, show_progress=show_progress).fit(df)
    synth.save(folder / "model")
    t1 = time.perf_counter()
    catalog, _ = synth.sample(rows, seed=7)
    t2 = time.perf_counter()
    write(catalog, folder / "catalog.csv")
    return DemoResult(str(folder), len(df), catalog, run_validation(catalog, cat), [c.name for c in cat.text_columns],
                      {"fit": t1 - t0, "sample": t2 - t1})
