"""The pipeline steps — fit, sample, validate, seed, evaluate — and the YAML runner behind `shopgen run`.

One implementation serves every scheduler: `shopgen run CONFIG` (cron, Make, Dagster, Prefect) and the
Airflow operators in `shopgen.airflow` call these same functions, so a YAML run and a DAG run with the
same seed write the same files. Each step takes plain values (strings are accepted where Airflow's
templates render numbers as text), calls the library functions the CLI calls, and returns a small
JSON-able dict: what it wrote, row counts, the validation summary and seconds. That dict is what an
orchestrator keeps (Airflow's XCom) and what `shopgen run` prints.

A failed validation or quality gate raises (ValidationFailed / GatesFailed, exit 1), so the task or the
run fails with one readable line. Heavy libraries load inside the steps: importing this module is instant.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import inspect
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from shopgen.errors import ShopgenError, ValidationFailed

# ---- helpers ---------------------------------------------------------------------------------------


def _int(value: Any, name: str, minimum: int | None = None) -> int | None:
    """An int from an int or a rendered template string ('200'); None stays None."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        number = value if isinstance(value, int) else int(str(value).strip())
    except ValueError:
        raise ShopgenError(f"{name} {value!r} is not a whole number; write e.g. {name}: 200") from None
    if minimum is not None and number < minimum:
        raise ShopgenError(f"{name} {value!r} must be a whole number >= {minimum}")
    return number


def _float(value: Any, name: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ShopgenError(f"{name} {value!r} is not a number") from None


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off", ""):
        return False
    raise ShopgenError(f"{name} {value!r} is not true or false")


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _is_url(value: str) -> bool:
    return "://" in value


def _seconds(t0: float) -> float:
    return round(time.perf_counter() - t0, 2)


def _need(module: str, step: str) -> Any:
    """Import a module a step depends on, or say in one line that this install lacks it."""
    from importlib import import_module

    try:
        return import_module(module)
    except ImportError as exc:
        raise ShopgenError(
            f"the {step} step is not available: {module} cannot be imported ({exc}); "
            "update shopgen or drop the step from the pipeline"
        ) from None


def _validation_dict(result: Any) -> dict[str, Any]:
    return {
        "success": result.success,
        "rows": result.n_rows,
        "expectations": result.n_expectations,
        "failures": dict(result.failures),
        "summary": result.summary(),
    }


# ---- the steps -------------------------------------------------------------------------------------


def fit(
    data: str | Path,
    out: str | Path,
    schema: str | Path | None = None,
    tabular: str = "ctgan",
    preset: str = "fast",
    epochs: int | str | None = None,
    batch_size: int | str | None = None,
    tabular_minutes: float | str | None = None,
    max_train_minutes: float | str | None = None,
    text_epochs: int | str | None = None,
    text_base: str | Path | None = None,
    seed: int | str = 0,
    show_progress: bool = False,
) -> dict[str, Any]:
    """`shopgen fit`: learn `data` (a catalog file) and write the model bundle to `out`.

    With `epochs` and `text_epochs` set and time budgets that are not reached, training is
    deterministic for a seed, so two runs of the same config give the same bundle contents.
    """
    from shopgen.bundle import check_bundle_target
    from shopgen.presets import get_preset
    from shopgen.schema import CatalogSchema
    from shopgen.sources import read_catalog
    from shopgen.tabular import KINDS

    t0 = time.perf_counter()
    if tabular not in KINDS:
        raise ShopgenError(f"tabular {tabular!r} is unknown; use one of {', '.join(KINDS)}")
    check_bundle_target(out)
    get_preset(preset)
    epochs, batch_size = _int(epochs, "epochs", 1), _int(batch_size, "batch_size", 10)
    text_epochs, seed = _int(text_epochs, "text_epochs", 1), _int(seed, "seed", 0) or 0
    tab_min, text_min = _float(tabular_minutes, "tabular_minutes"), _float(max_train_minutes, "max_train_minutes")
    text_base = _text(text_base)
    if text_base is not None and not Path(text_base).is_dir():
        raise ShopgenError(f"text_base {text_base!r} is not a directory; give a local save_pretrained checkpoint")
    cat = CatalogSchema.from_yaml(schema) if _text(schema) else None
    df = read_catalog(data)
    if cat is None:
        cat = CatalogSchema.infer(df, name=Path(data).stem)
    cat.check_training(df, source=str(data))
    from shopgen.synthesizer import CatalogSynthesizer

    synth = CatalogSynthesizer(
        cat, tabular=tabular, preset=preset, epochs=epochs, batch_size=batch_size,
        tabular_max_seconds=tab_min * 60 if tab_min else None,
        text_max_seconds=text_min * 60 if text_min else None,
        text_epochs=text_epochs, text_base=text_base, seed=seed, show_progress=_bool(show_progress, "show_progress"),
    ).fit(df)
    synth.save(out)
    stats = synth.text_model_.stats_ if synth.text_model_ is not None else None
    return {
        "step": "fit",
        "bundle": str(out),
        "rows": len(df),
        "tabular": tabular,
        "preset": preset,
        "tabular_epochs": getattr(synth.tabular_model_, "epochs_", None),
        "text": None if stats is None else {
            "steps": stats.steps, "epochs": stats.epochs, "val_loss": _finite(stats.val_loss),
            "stopped_by": stats.stopped_by,
        },
        "seconds": {**synth.fit_seconds_, "total": _seconds(t0)},
    }


def _finite(x: float) -> float | None:
    return None if x != x else x  # NaN is not JSON


def _conditions(value: Any, schema: Any) -> dict[str, Any] | None:
    """{'category': 'Shoes', 'price': [10, 50]} (YAML / Python) or ['category=Shoes', 'price=10..50'] (CLI form)."""
    from shopgen.conditions import check, parse_where

    if value is None or value == "" or value == {} or value == []:
        return None
    if isinstance(value, str):
        value = [value]
    if isinstance(value, Mapping):
        return check({k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}, schema)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return parse_where(value, schema)
    raise ShopgenError(f"conditions {value!r}: write a mapping like {{category: Shoes, price: [10, 50]}} "
                       "or a list like ['category=Shoes', 'price=10..50']")


def _file_target(output: str, if_exists: str | None) -> Path:
    """A pipeline owns its work folder: the output's folder is created, then checked like the CLI does."""
    from shopgen.sinks import check_target

    Path(output).parent.mkdir(parents=True, exist_ok=True)
    return check_target(output, if_exists)


def sample(
    bundle: str | Path,
    rows: int | str,
    output: str | Path,
    seed: int | str = 0,
    conditions: Mapping[str, Any] | list[str] | str | None = None,
    table: str | None = None,
    if_exists: str | None = None,
    temperature: float | str | None = None,
    top_p: float | str | None = None,
    guidance: float | str | None = None,
    allow_copies: bool | str = False,
    show_progress: bool = False,
    text_workers: int | str | None = None,
    guide_all_fields: bool | str = False,
    text_precision: str | None = None,
    guided_tokens: int | str | None = None,
    csv_raw: bool | str = False,
) -> dict[str, Any]:
    """`shopgen sample`: `rows` valid rows from `bundle`, written atomically to a file (.csv, .parquet,
    .jsonl) or a database URL (`table` defaults to the schema's name). Same bundle and seed, same rows.
    `if_exists`: a file's replace (default) or fail; a table's fail (default), replace or append."""
    from shopgen.bundle import verify_bundle
    from shopgen.db import is_db_target
    from shopgen.schema import CatalogSchema

    t0 = time.perf_counter()
    n, seed = _int(rows, "rows", 1), _int(seed, "seed", 0) or 0
    if n is None:
        raise ShopgenError("rows is missing; say how many rows to generate, e.g. rows: 1000")
    output = str(output)
    verify_bundle(bundle)
    schema = CatalogSchema.from_yaml(Path(bundle) / "schema.yaml")
    conds = _conditions(conditions, schema)
    if is_db_target(output):
        from shopgen.db import check

        table = _text(table) or schema.name
        target: Any = check(output, table, if_exists or "fail", schema)  # connection and table state, before generating
    else:
        target, table = _file_target(output, _text(if_exists)), None
    from shopgen.sinks import write
    from shopgen.synthesizer import CatalogSynthesizer

    show = _bool(show_progress, "show_progress")
    synth = CatalogSynthesizer.load(bundle, show_progress=show)
    catalog = synth.sample(n, seed=seed, conditions=conds, allow_copies=_bool(allow_copies, "allow_copies"),
                           temperature=_float(temperature, "temperature"), top_p=_float(top_p, "top_p"),
                           guidance=_float(guidance, "guidance"), text_workers=_int(text_workers, "text_workers", 1),
                           guide_all_fields=_bool(guide_all_fields, "guide_all_fields"),
                           text_precision=_text(text_precision),
                           guided_tokens=_int(guided_tokens, "guided_tokens", 0))
    t1 = time.perf_counter()
    write(catalog, target, table, schema=synth.schema, if_exists=if_exists, show_progress=show,
          raw=_bool(csv_raw, "csv_raw"))
    s = synth.last_sample_stats_
    return {
        "step": "sample",
        "output": str(target),
        "table": table,
        "rows": len(catalog),
        "seed": seed,
        "conditions": {k: list(v) if isinstance(v, tuple) else v for k, v in (conds or {}).items()},
        "validation": {
            "success": True,  # sample() returns only rows that passed every expectation, or raises
            "summary": f"{len(catalog)} rows passed all expectations; {s['invalid']} of {s['drawn']} drawn rows "
                       f"failed and were redrawn in {s['rounds']} round(s)",
            "drawn": s["drawn"], "invalid": s["invalid"], "copies_redrawn": s["copies_redrawn"],
        },
        "seconds": {"sample": round(t1 - t0, 2), "write": _seconds(t1), "total": _seconds(t0)},
    }


def _read(data: str, table: str | None, schema: Any) -> Any:
    """A catalog from a file, or from a table when `data` is a database URL (default: the schema's name)."""
    from shopgen.db import is_db_target

    if not is_db_target(data):
        from shopgen.sources import read_catalog

        return read_catalog(data)
    import pandas as pd
    import sqlalchemy as sa

    from shopgen.db import parse_target
    from shopgen.db.target import first_line

    target, table = parse_target(data), _text(table) or schema.name
    if target.family == "sqlite" and not Path(target.url.database or "").is_file():
        raise ShopgenError(f"database {target} does not exist; check the URL or run the sample / seed step first")
    engine = target.engine()
    try:
        return pd.read_sql_table(table, engine)
    except ValueError:
        raise ShopgenError(f"table {table!r} is not in {target}; check the table name") from None
    except sa.exc.SQLAlchemyError as exc:
        raise ShopgenError(f"cannot read table {table!r} from {target} ({first_line(exc)}); check the URL") from None
    finally:
        engine.dispose()


def validate(
    data: str | Path,
    schema: str | Path,
    table: str | None = None,
    fail: bool | str = True,
) -> dict[str, Any]:
    """`shopgen validate`: check a catalog file (or a database table) against the schema's expectations.

    A failure raises ValidationFailed with the summary (which expectation, how many rows, examples),
    unless `fail` is false, for a step that only reports.
    """
    from shopgen.schema import CatalogSchema

    t0 = time.perf_counter()
    cat = CatalogSchema.from_yaml(schema)
    df = _read(str(data), table, cat)
    from shopgen.validation import validate as run_validation

    result = run_validation(df, cat)
    out = {"step": "validate", "data": str(data), **_validation_dict(result), "seconds": {"total": _seconds(t0)}}
    if not result.success and _bool(fail, "fail"):
        raise ValidationFailed(f"{data} fails validation: {result.summary()}")
    return out


def seed(
    db: str | Path,
    table: str | None = None,
    bundle: str | Path | None = None,
    rows: int | str | None = None,
    data: str | Path | None = None,
    schema: str | Path | None = None,
    if_exists: str = "fail",
    seed: int | str = 0,
    batch_size: int | str = 1000,
    show_progress: bool = False,
) -> dict[str, Any]:
    """Fill a database table, all or nothing. Either generate: `bundle` + `rows` (what `shopgen seed`
    does, streamed in batches), or load a catalog file already made and validated: `data` (+ `schema`,
    default the bundle's, for the table's types and constraints)."""
    _need("shopgen.db", "seed")
    from shopgen.db import check, parse_target
    from shopgen.db import write as db_write
    from shopgen.db.ddl import check_table_name
    from shopgen.db.load import IF_EXISTS
    from shopgen.schema import CatalogSchema

    t0 = time.perf_counter()
    bundle, data = _text(bundle), _text(data)
    if (bundle is None) == (data is None) or (data is None and rows in (None, "")):
        raise ShopgenError("the seed step needs either bundle and rows (generate) or data (load a catalog file)")
    if if_exists not in IF_EXISTS:
        raise ShopgenError(f"if_exists {if_exists!r} is unknown; use one of {', '.join(IF_EXISTS)}")
    target = parse_target(str(db))
    if bundle is not None:
        from shopgen.bundle import verify_bundle

        verify_bundle(bundle)
    schema_path = _text(schema) or (str(Path(bundle) / "schema.yaml") if bundle else None)
    cat = CatalogSchema.from_yaml(schema_path) if schema_path else None
    table = check_table_name(_text(table) or (cat.name if cat else Path(str(data)).stem))
    show = _bool(show_progress, "show_progress")
    if data is not None:
        from shopgen.sources import read_catalog

        frame = read_catalog(data)
        if cat is not None:
            frame = cat.check_frame(frame, source=data)
            check(target, table, if_exists, cat)
        loaded = db_write(frame, target, table, schema=cat, if_exists=if_exists, show_progress=show)
        source = {"data": data}
    else:
        n, seed_, batch = _int(rows, "rows", 1), _int(seed, "seed", 0) or 0, _int(batch_size, "batch_size", 1)
        check(target, table, if_exists, cat)  # before the model loads: a doomed seed fails in a second
        from shopgen.synthesizer import CatalogSynthesizer

        synth = CatalogSynthesizer.load(bundle, show_progress=False)
        loaded = db_write(synth.iter_sample(n, seed_, batch), target, table, schema=synth.schema,
                          if_exists=if_exists, batch_size=batch, total=n, show_progress=show)
        source = {"bundle": bundle, "seed": seed_}
    return {
        "step": "seed",
        "db": str(target),
        "table": table,
        "rows": loaded.rows,
        **source,
        "method": loaded.method,
        "seconds": {"generate": round(loaded.input_seconds, 2), "load": round(loaded.seconds - loaded.input_seconds, 2),
                    "total": _seconds(t0)},
    }


def _gates(value: Any, option: str) -> dict[str, float]:
    """{'quality': 0.8} (YAML / Python) or ['quality=0.8'] (CLI form) -> {'quality': 0.8}."""
    from shopgen.evaluation.gates import parse_gates

    if value is None or value == "" or value == {} or value == []:
        return {}
    if isinstance(value, Mapping):
        value = [f"{k}={v}" for k, v in value.items()]
    elif isinstance(value, str):
        value = [value]
    return parse_gates(list(value), option)


def _report_path(path: Any, suffix: str, name: str) -> Path | None:
    if _text(path) is None:
        return None
    path = Path(str(path))
    if path.suffix.lower() != suffix:
        raise ShopgenError(f"{name} {str(path)!r} must end in {suffix}")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def evaluate(
    real: str | Path,
    synthetic: str | Path,
    schema: str | Path,
    report: str | Path | None = None,
    json: str | Path | None = None,
    holdout: str | float | None = None,
    minimum: Mapping[str, float] | list[str] | None = None,
    maximum: Mapping[str, float] | list[str] | None = None,
    target: str | None = None,
    seed: int | str = 0,
) -> dict[str, Any]:
    """`shopgen evaluate`: score `synthetic` against `real`, write the HTML (and JSON) report, and fail
    (GatesFailed, exit 1) when a score misses its gate, e.g. minimum={'quality': 0.8}."""
    _need("shopgen.evaluation.report", "evaluate")
    from shopgen.evaluation.gates import GatesFailed, check_names
    from shopgen.evaluation.report import HEADLINE, possible_names
    from shopgen.evaluation.report import evaluate as run_evaluation
    from shopgen.schema import CatalogSchema
    from shopgen.sources import read_catalog

    t0 = time.perf_counter()
    mins, maxs = _gates(minimum, "minimum"), _gates(maximum, "maximum")
    cat = CatalogSchema.from_yaml(schema)
    valid = possible_names(cat)
    check_names(mins, valid, "minimum")
    check_names(maxs, valid, "maximum")
    report_path, json_path = _report_path(report, ".html", "report"), _report_path(json, ".json", "json")
    target = _text(target)
    if target is not None:
        cat.column(target)
    kwargs: dict[str, Any] = {}
    if _text(holdout) is not None:
        try:
            kwargs["holdout_fraction"] = float(holdout)
        except ValueError:
            kwargs["holdout"] = read_catalog(str(holdout))
    result = run_evaluation(read_catalog(real), read_catalog(synthetic), cat, target=_text(target),
                            seed=_int(seed, "seed", 0) or 0, **kwargs)
    if report_path:
        result.to_html(report_path)
    if json_path:
        result.to_json(json_path)
    scores = result.to_dict()["scores"]
    failed = result.check(mins, maxs)
    out = {
        "step": "evaluate",
        "report": str(report_path) if report_path else None,
        "json": str(json_path) if json_path else None,
        "rows": result.meta["rows"],
        "scores": {k: scores[k] for k in [*HEADLINE, *mins, *maxs] if k in scores},
        "summary": result.summary(),
        "gates": {"checked": len(mins) + len(maxs), "failed": failed},
        "seconds": {"total": _seconds(t0)},
    }
    if failed:
        raise GatesFailed("gates failed: " + "; ".join(failed))
    return out


STEPS: dict[str, Callable[..., dict[str, Any]]] = {
    "fit": fit, "sample": sample, "validate": validate, "seed": seed, "evaluate": evaluate,
}

# ---- the YAML runner ---------------------------------------------------------------------------------

# Parameters holding local paths: relative ones resolve against the config file's folder, so a config
# means the same files from any working directory (cron, Make). Inputs must exist before the run starts
# unless an earlier step writes them; outputs are what a step writes.
INPUTS = {"fit": ("data", "schema", "text_base"), "sample": ("bundle",), "validate": ("data", "schema"),
          "seed": ("bundle", "data", "schema"), "evaluate": ("real", "synthetic", "schema", "holdout")}
OUTPUTS = {"fit": ("out",), "sample": ("output",), "evaluate": ("report", "json"), "seed": ("db",)}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _resolve(value: Any, base: Path) -> Any:
    """A relative path (or sqlite:///relative.db) against `base`; URLs and absolute paths are kept."""
    if not isinstance(value, str) or value == "":
        return value
    if value.startswith("sqlite:///") and not value.startswith("sqlite:////"):
        return "sqlite:///" + str((base / value[len("sqlite:///"):]).resolve())
    if _is_url(value):
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def _substitute(value: Any, variables: Mapping[str, Any], where: str) -> Any:
    """`${name}` from vars; a value that is exactly `${name}` keeps the variable's type (rows: ${rows} is an int)."""
    if isinstance(value, str):
        whole = _VAR.fullmatch(value)

        def lookup(name: str) -> Any:
            if name not in variables:
                raise ShopgenError(f"{where}: ${{{name}}} is not defined; define it under vars: "
                                   f"or pass --set {name}=... (defined: {', '.join(sorted(variables))})")
            return variables[name]

        if whole:
            return lookup(whole.group(1))
        return _VAR.sub(lambda m: str(lookup(m.group(1))), value)
    if isinstance(value, list):
        return [_substitute(v, variables, where) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, variables, where) for k, v in value.items()}
    return value


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """['rows=100', 'seed=7'] -> {'rows': 100, 'seed': 7}; values are read as YAML scalars."""
    from shopgen.schema import load_yaml

    out: dict[str, Any] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ShopgenError(f"--set {item!r} is not NAME=VALUE; write e.g. --set rows=1000")
        out[name.strip()] = load_yaml(value) if value.strip() else ""
    return out


def _check_params(name: str, params: dict[str, Any], where: str) -> None:
    """Unknown or missing parameters, from the step function's own signature: one source of truth."""
    sig = inspect.signature(STEPS[name])
    known = list(sig.parameters)
    for key in params:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ShopgenError(f"{where}: {key!r} is not a parameter of the {name} step{hint}; "
                               f"its parameters are {', '.join(known)}")
    missing = [p.name for p in sig.parameters.values() if p.default is inspect.Parameter.empty and p.name not in params]
    if missing:
        raise ShopgenError(f"{where}: the {name} step needs {', '.join(missing)}; add {missing[0]}: ... to it")


def load_config(
    config: str | Path | Mapping[str, Any], overrides: Mapping[str, Any] | None = None,
) -> list[tuple[str, dict[str, Any], str]]:
    """Read and check a pipeline config before anything runs: [(step, params, where), ...].

    ```yaml
    vars: {workdir: ../out/pipeline, seed: 7}   # ${name} anywhere below; ${date} is today (YYYY-MM-DD)
    steps:
      - fit: {data: ../sample_data/products.csv, schema: ../schemas/product_catalog.yaml, out: "${workdir}/model"}
      - sample: {bundle: "${workdir}/model", rows: 1000, seed: "${seed}", output: "${workdir}/catalog.csv"}
      - validate: {data: "${workdir}/catalog.csv", schema: ../schemas/product_catalog.yaml}
    ```
    Relative paths resolve against the config file's folder (the current folder for a dict).
    """
    import yaml

    from shopgen.schema import load_yaml

    if isinstance(config, Mapping):
        doc, base, label = dict(config), Path.cwd(), "pipeline config"
    else:
        path = Path(config)
        if not path.is_file():
            raise ShopgenError(f"pipeline config {str(path)!r} does not exist; check the path")
        try:
            doc = load_yaml(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise ShopgenError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
        except yaml.YAMLError as exc:
            first = str(exc).splitlines()[0]
            raise ShopgenError(f"{path}: not valid YAML ({first}); fix the file") from None
        base, label = path.resolve().parent, str(path)
    if not isinstance(doc, Mapping) or not isinstance(doc.get("steps"), list) or not doc["steps"]:
        raise ShopgenError(f"{label}: needs a list of steps, e.g. steps: [{{fit: {{...}}}}, {{sample: {{...}}}}]")
    extra = sorted(set(doc) - {"vars", "steps"})
    if extra:
        raise ShopgenError(f"{label}: unknown top-level key {extra[0]!r}; a pipeline config has vars: and steps:")
    variables: dict[str, Any] = {"date": _dt.date.today().isoformat()}
    declared = doc.get("vars") or {}
    if not isinstance(declared, Mapping):
        raise ShopgenError(f"{label}: vars must be a mapping of names to values")
    unknown = sorted(set(overrides or {}) - set(declared))
    if unknown:
        raise ShopgenError(f"{label}: --set {unknown[0]} names no variable; variables are {', '.join(sorted(declared))}")
    for key, value in {**declared, **(overrides or {})}.items():  # a var may use the ones before it
        variables[str(key)] = _substitute(value, variables, f"{label}: vars.{key}")

    plan: list[tuple[str, dict[str, Any], str]] = []
    written: set[str] = set()
    for i, entry in enumerate(doc["steps"], 1):
        if not isinstance(entry, Mapping) or len(entry) != 1:
            raise ShopgenError(f"{label}: step {i} must be one step name with its parameters, e.g. - sample: {{rows: 100}}")
        name, params = next(iter(entry.items()))
        where = f"{label}: step {i} ({name})"
        if name not in STEPS:
            close = difflib.get_close_matches(str(name), list(STEPS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ShopgenError(f"{label}: step {i} {name!r} is unknown{hint}; steps are {', '.join(STEPS)}")
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise ShopgenError(f"{where}: parameters must be a mapping, e.g. - {name}: {{...}}")
        params = _substitute(dict(params), variables, where)
        _check_params(name, params, where)
        for key in (*INPUTS.get(name, ()), *OUTPUTS.get(name, ())):
            if key in params and not (key == "holdout" and _is_fraction(params[key])):
                params[key] = _resolve(params[key], base)
        for key in INPUTS.get(name, ()):
            value = params.get(key)
            if isinstance(value, str) and value and not _is_url(value) and value not in written \
                    and not Path(value).exists() and not (key == "data" and name == "validate" and _is_db(value)):
                raise ShopgenError(f"{where}: {key} {value!r} does not exist and no earlier step writes it; fix the path")
        for key in OUTPUTS.get(name, ()):
            if isinstance(params.get(key), str):
                written.add(params[key])
        plan.append((name, params, where))
    return plan


def _is_fraction(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _is_db(value: str) -> bool:
    from shopgen.db import is_db_target

    return is_db_target(value)


def run(
    config: str | Path | Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    echo: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run a pipeline config's steps in order (`shopgen run CONFIG`); stops at the first failure.

    Errors carry the step: "pipelines/catalog.yaml: step 3 (validate): ...", with the error's own class
    (a failed validation stays ValidationFailed, exit 1).
    """
    plan = load_config(config, overrides)
    t0 = time.perf_counter()
    results = []
    for name, params, where in plan:
        try:
            result = STEPS[name](**params)
        except ShopgenError as exc:
            raise type(exc)(f"{where}: {exc}") from None  # same class, same exit code (ValidationFailed: 1)
        results.append(result)
        if echo is not None:
            echo(describe(result))
    return {"steps": results, "seconds": _seconds(t0)}


def describe(result: Mapping[str, Any]) -> str:
    """One line per step result, for `shopgen run` and the Airflow task log."""
    step, secs = result.get("step"), result.get("seconds", {}).get("total")
    if step == "fit":
        text = result.get("text") or {}
        return (f"fit       {result['rows']} rows -> {result['bundle']} in {secs}s "
                f"({result['tabular']} {result['tabular_epochs']} epochs; text {text.get('steps', 0)} steps)")
    if step == "sample":
        where = result["output"] + (f" table {result['table']}" if result.get("table") else "")
        return f"sample    {result['rows']} rows -> {where} in {secs}s ({result['validation']['summary']})"
    if step == "validate":
        return f"validate  {'PASS' if result['success'] else 'FAIL'} {result['data']}: {result['summary']}"
    if step == "seed":
        return f"seed      {result['rows']} rows -> table {result['table']} in {result['db']} in {secs}s"
    if step == "evaluate":
        gates = result["gates"]
        return (f"evaluate  {result['summary']}" + (f"; {gates['checked']} gates passed" if gates["checked"] else "")
                + (f" -> {result['report']}" if result.get("report") else ""))
    return str(dict(result))
