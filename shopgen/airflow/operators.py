"""Airflow 3 operators for shopgen's pipeline steps: fit, sample, validate, seed, evaluate.

Each operator is a thin shell over one step of `shopgen.pipeline`, which coerces rendered templates and
calls `shopgen.app`, the code `shopgen run` and the command line run too, so a DAG, a YAML pipeline and a
shell with the same seed write the same files. An operator takes exactly its step's parameters. Paths, rows, seeds and dates are
templated fields (`output="{{ params.workdir }}/{{ ds }}/catalog.csv"`); numbers rendered as text are
accepted. `execute` returns the step's small JSON-able dict (output, rows, validation summary, seconds),
which Airflow keeps as the task's XCom.

Failures: a failed validation or quality gate (shopgen's exit code 1) raises AirflowFailException, which
fails the task without retries, since a retry would draw the same rows again; any other shopgen error
(bad input, an unreachable database) fails the task normally, so configured retries apply. Both carry
shopgen's one-line message. torch, SDV and the rest load inside `execute`, never when a DAG is parsed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from airflow.sdk import BaseOperator


class ShopgenOperator(BaseOperator):
    """Runs the pipeline step `step` with the operator's (rendered) fields as arguments."""

    step: ClassVar[str] = ""
    # step parameter -> attribute holding it (the same name, except where BaseOperator owns the name)
    arguments: ClassVar[dict[str, str]] = {}
    ui_color = "#e8f1fa"

    def step_arguments(self) -> dict[str, Any]:
        return {param: getattr(self, attr) for param, attr in self.arguments.items()}

    def execute(self, context: Any) -> dict[str, Any]:
        try:
            from airflow.sdk.exceptions import AirflowException, AirflowFailException
        except ImportError:  # Airflow releases whose task SDK does not carry them yet
            from airflow.exceptions import AirflowException, AirflowFailException

        from shopgen import pipeline
        from shopgen.errors import ShopgenError

        try:
            result = pipeline.STEPS[self.step](**self.step_arguments())
        except ShopgenError as exc:
            message = f"shopgen {self.step}: {exc}"
            if exc.exit_code == 1:  # validation failed or a gate was missed: the data is wrong, do not retry
                raise AirflowFailException(message) from exc
            raise AirflowException(message) from exc
        self.log.info("%s", result.describe())
        return result.to_dict()


class ShopgenFitOperator(ShopgenOperator):
    """Learn a catalog file, or a folder of a shop's tables, and write a model bundle (`shopgen fit`)."""

    step = "fit"
    template_fields: Sequence[str] = (
        "data", "out", "schema", "tabular", "preset", "epochs", "batch_size", "tabular_minutes",
        "max_train_minutes", "text_epochs", "text_base", "text_precision", "seed", "products",
    )
    arguments = {name: name for name in template_fields}

    def __init__(
        self, *, data: str, out: str, schema: str | None = None, tabular: str = "ctgan", preset: str = "fast",
        epochs: int | str | None = None, batch_size: int | str | None = None,
        tabular_minutes: float | str | None = None, max_train_minutes: float | str | None = None,
        text_epochs: int | str | None = None, text_base: str | None = None, text_precision: str = "fp32",
        seed: int | str = 0, products: str = "new", **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.products = products
        self.data, self.out, self.schema, self.tabular, self.preset = data, out, schema, tabular, preset
        self.epochs, self.batch_size, self.tabular_minutes = epochs, batch_size, tabular_minutes
        self.max_train_minutes, self.text_epochs, self.text_base = max_train_minutes, text_epochs, text_base
        self.text_precision, self.seed = text_precision, seed


class ShopgenSampleOperator(ShopgenOperator):
    """Generate `rows` valid rows into a file (.csv, .parquet, .jsonl) or a database URL (`shopgen sample`).

    `conditions` is a mapping like {"category": "Shoes", "price": [10, 50]}; `table` applies when `output`
    is a database; `if_exists` to a file (replace, fail) or a table (fail, replace, append); `csv_raw` writes
    CSV cells a spreadsheet would run as formulas as they are. A shop's bundle writes `rows` new customers
    over the real or new `products` into a new folder of `table_format` tables, or every table of a database.
    """

    step = "sample"
    template_fields: Sequence[str] = (
        "bundle", "rows", "output_path", "seed", "conditions", "table", "if_exists", "temperature", "top_p",
        "guidance", "text_workers", "guide_all_fields", "text_precision", "guided_tokens", "products", "table_format",
    )
    arguments = {"bundle": "bundle", "rows": "rows", "output": "output_path", "seed": "seed",
                 "conditions": "conditions", "table": "table", "if_exists": "if_exists",
                 "temperature": "temperature", "top_p": "top_p", "guidance": "guidance",
                 "allow_copies": "allow_copies", "text_workers": "text_workers",
                 "guide_all_fields": "guide_all_fields", "text_precision": "text_precision",
                 "guided_tokens": "guided_tokens", "csv_raw": "csv_raw", "products": "products",
                 "table_format": "table_format"}

    def __init__(
        self, *, bundle: str, rows: int | str, output: str, seed: int | str = 0,
        conditions: Mapping[str, Any] | None = None, table: str | None = None, if_exists: str | None = None,
        temperature: float | str | None = None, top_p: float | str | None = None,
        guidance: float | str | None = None, allow_copies: bool = False,
        text_workers: int | str | None = None, guide_all_fields: bool | str = False,
        text_precision: str | None = None, guided_tokens: int | str | None = None, csv_raw: bool = False,
        products: str = "real", table_format: str = "parquet", **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        # BaseOperator.output is Airflow's XComArg of this task, so the target lives in output_path
        self.bundle, self.rows, self.output_path, self.seed = bundle, rows, output, seed
        self.conditions, self.table, self.if_exists = conditions, table, if_exists
        self.temperature, self.top_p, self.guidance, self.allow_copies = temperature, top_p, guidance, allow_copies
        self.text_workers, self.guide_all_fields, self.text_precision = text_workers, guide_all_fields, text_precision
        self.guided_tokens, self.csv_raw = guided_tokens, csv_raw
        self.products, self.table_format = products, table_format


class ShopgenValidateOperator(ShopgenOperator):
    """Check a catalog file (or a database table) against a schema; fails the task if any row fails, unless
    `fail` is false (a task that only reports: the counts are in its XCom)."""

    step = "validate"
    template_fields: Sequence[str] = ("data", "schema", "table", "fail")
    arguments = {name: name for name in template_fields}

    def __init__(self, *, data: str, schema: str, table: str | None = None, fail: bool | str = True,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data, self.schema, self.table, self.fail = data, schema, table, fail


class ShopgenSeedOperator(ShopgenOperator):
    """Fill a database table, all or nothing: generate from `bundle` + `rows`, or load a catalog file (`data`).
    A shop's bundle (or `data` a folder of its tables) fills every table of the shop with its keys."""

    step = "seed"
    template_fields: Sequence[str] = ("db", "table", "bundle", "rows", "data", "schema", "if_exists", "seed", "products")
    arguments = {name: name for name in (*template_fields, "batch_size")}

    def __init__(
        self, *, db: str, table: str | None = None, bundle: str | None = None, rows: int | str | None = None,
        data: str | None = None, schema: str | None = None, if_exists: str = "fail", seed: int | str = 0,
        batch_size: int = 1000, products: str = "real", **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.db, self.table, self.bundle, self.rows, self.data = db, table, bundle, rows, data
        self.schema, self.if_exists, self.seed, self.batch_size = schema, if_exists, seed, batch_size
        self.products = products


class ShopgenEvaluateOperator(ShopgenOperator):
    """Score a synthetic catalog against the real one, write the report; fails the task on a missed gate.

    Gates: minimum={"quality": 0.8}, maximum={"rule_violations": 0}.
    """

    step = "evaluate"
    template_fields: Sequence[str] = (
        "real", "synthetic", "schema", "report", "json", "holdout", "minimum", "maximum", "target", "seed",
    )
    arguments = {name: name for name in template_fields}

    def __init__(
        self, *, real: str, synthetic: str, schema: str, report: str | None = None, json: str | None = None,
        holdout: str | float | None = None, minimum: Mapping[str, float] | None = None,
        maximum: Mapping[str, float] | None = None, target: str | None = None, seed: int | str = 0, **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.real, self.synthetic, self.schema, self.report, self.json = real, synthetic, schema, report, json
        self.holdout, self.minimum, self.maximum, self.target, self.seed = holdout, minimum, maximum, target, seed


__all__ = [
    "ShopgenEvaluateOperator", "ShopgenFitOperator", "ShopgenOperator", "ShopgenSampleOperator",
    "ShopgenSeedOperator", "ShopgenValidateOperator",
]
