"""The YAML runner behind `shopgen run`, and the pipeline form of each step for schedulers.

A scheduler hands over what it rendered: Airflow's templates turn numbers into text ("200"), YAML gives
lists where Python has tuples. The step functions here only coerce such values to the types of
`shopgen.app`'s functions and call them, so `shopgen run CONFIG`, the Airflow operators (`shopgen.airflow`)
and the command line run the same code and write the same files. A step returns its result object
(`to_dict()` is what an orchestrator keeps, Airflow's XCom; `describe()` its log line).

A failed validation or quality gate raises (ValidationFailed / GatesFailed, exit 1), so the task or the
run fails with one readable line. Heavy libraries load inside the steps: importing this module is instant.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import difflib
import inspect
import re
import time
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from shopgen import app
from shopgen.errors import ShopgenError
from shopgen.options import FitOptions, TextSampling, text_key

# ---- coercion --------------------------------------------------------------------------------------


def _int(value: Any, name: str) -> int | None:
    """An int from an int or a rendered template string ('200'); None and '' stay None."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        return value if isinstance(value, int) else int(str(value).strip())
    except ValueError:
        raise ShopgenError(f"{name} {value!r} is not a whole number; write e.g. {name}: 200") from None


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


def _coerce(value: Any, hint: Any, name: str) -> Any:
    """`value` as the annotated type `hint` (int, float, bool or str, each maybe None)."""
    kinds = set(typing.get_args(hint)) or {hint}
    if bool in kinds:
        return _bool(value, name)
    if int in kinds:
        return _int(value, name)
    if float in kinds:
        return _float(value, name)
    return _text(value)


def _options(cls: type, params: Mapping[str, Any], key: Callable[[str], str] = lambda f: f) -> Any:
    """A FitOptions or TextSampling from a step's parameters, each coerced to its field's type; a field
    left out, or given as None or '', keeps its default."""
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):
        name = key(f.name)
        if name in params:
            value = _coerce(params[name], hints[f.name], name)
            if value is not None:
                values[f.name] = value
    return cls(**values)


def _count(value: Any, name: str, default: int | None = None) -> int | None:
    number = _int(value, name)
    return default if number is None else number


# ---- the steps -------------------------------------------------------------------------------------
FIT_OPTIONS = tuple(f.name for f in dataclasses.fields(FitOptions))
TEXT_OPTIONS = tuple(text_key(f.name) for f in dataclasses.fields(TextSampling))


def fit(data: str | Path, out: str | Path, schema: str | Path | None = None, show_progress: bool | str = False,
        **options: Any) -> app.FitResult | app.ShopFitResult:
    """`shopgen fit`: learn `data` (a catalog file, or a folder of a shop's tables) and write the bundle to
    `out`; `options` are FitOptions' fields."""
    _known(options, FIT_OPTIONS, "fit")
    return app.fit(str(data), str(out), _options(FitOptions, options), schema=_text(schema),
                   show_progress=_bool(show_progress, "show_progress"))


def sample(bundle: str | Path, rows: int | str, output: str | Path, seed: int | str = 0,
           conditions: Mapping[str, Any] | list[str] | str | None = None, table: str | None = None,
           if_exists: str | None = None, csv_raw: bool | str = False, products: str = "real",
           table_format: str = "parquet", show_progress: bool | str = False,
           **text: Any) -> app.SampleResult | app.ShopSampleResult:
    """`shopgen sample`: `rows` valid rows from `bundle` to a file or a database URL; `text` are
    TextSampling's fields (with text_workers and text_precision for its workers and precision).
    A shop's bundle: `rows` new customers, over the real or new `products`, as a folder of `table_format`
    tables or a database. The output's folder is created: a pipeline owns its work folder."""
    _known(text, TEXT_OPTIONS, "sample")
    n = _int(rows, "rows")
    if n is None:
        raise ShopgenError("rows is missing; say how many rows to generate, e.g. rows: 1000")
    return app.sample(str(bundle), n, str(output), seed=_count(seed, "seed", 0), conditions=conditions or None,
                      text=_options(TextSampling, text, text_key), table=_text(table), if_exists=_text(if_exists),
                      csv_raw=_bool(csv_raw, "csv_raw"), create_folder=True, products=_text(products) or "real",
                      table_format=_text(table_format) or "parquet",
                      show_progress=_bool(show_progress, "show_progress"))


def validate(data: str | Path, schema: str | Path, table: str | None = None, fail: bool | str = True) -> app.ValidateResult:
    """`shopgen validate`: a catalog file (or a database table) against the schema; a failure raises
    ValidationFailed with its summary unless `fail` is false, for a step that only reports."""
    result = app.validate(str(data), str(schema), table=_text(table))
    return result.check() if _bool(fail, "fail") else result


def seed(db: str | Path, table: str | None = None, bundle: str | Path | None = None, rows: int | str | None = None,
         data: str | Path | None = None, schema: str | Path | None = None, if_exists: str = "fail",
         seed: int | str = 0, batch_size: int | str = app.DEFAULT_SEED_BATCH, products: str = "real",
         show_progress: bool | str = False) -> app.SeedResult | app.ShopSeedResult:
    """Fill a database table, all or nothing: generate from `bundle` + `rows`, or load a catalog file (`data`);
    a shop's bundle or folder fills every table of the shop."""
    return app.seed(str(db), _text(table), bundle=_text(bundle), rows=_int(rows, "rows"), data=_text(data),
                    schema=_text(schema), if_exists=_text(if_exists) or "fail", seed=_count(seed, "seed", 0),
                    batch_size=_count(batch_size, "batch_size", app.DEFAULT_SEED_BATCH),
                    products=_text(products) or "real", show_progress=_bool(show_progress, "show_progress"))


def _gates(value: Any, option: str) -> dict[str, float]:
    """{'quality': 0.8} (YAML / Python) or ['quality=0.8'] (CLI form) -> {'quality': 0.8}."""
    from shopgen.options import parse_gates

    if value is None or value == "" or value == {} or value == []:
        return {}
    if isinstance(value, Mapping):
        value = [f"{k}={v}" for k, v in value.items()]
    elif isinstance(value, str):
        value = [value]
    return parse_gates(list(value), option)


def evaluate(real: str | Path, synthetic: str | Path, schema: str | Path, report: str | Path | None = None,
             json: str | Path | None = None, holdout: str | float | None = None,
             minimum: Mapping[str, float] | list[str] | None = None, maximum: Mapping[str, float] | list[str] | None = None,
             target: str | None = None, seed: int | str = 0) -> app.EvaluateResult:
    """`shopgen evaluate`: score `synthetic` against `real`, write the reports (their folders are created),
    and fail (GatesFailed, exit 1) when a score misses its gate, e.g. minimum={'quality': 0.8}."""
    return app.evaluate(str(real), str(synthetic), str(schema), report=_text(report), json=_text(json),
                        holdout=_text(holdout), minimum=_gates(minimum, "minimum"), maximum=_gates(maximum, "maximum"),
                        target=_text(target), seed=_count(seed, "seed", 0), create_folders=True).check()


def _known(params: Mapping[str, Any], names: tuple[str, ...], step: str) -> None:
    unknown = [k for k in params if k not in names]
    if unknown:
        raise ShopgenError(f"{unknown[0]!r} is not a parameter of the {step} step; its options are {', '.join(names)}")


STEPS: dict[str, Callable[..., Any]] = {
    "fit": fit, "sample": sample, "validate": validate, "seed": seed, "evaluate": evaluate,
}


def parameters(step: str) -> list[str]:
    """Every parameter a step takes, its options' fields included: what YAML and the operators may set."""
    sig = inspect.signature(STEPS[step])
    named = [p.name for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    return named + list({"fit": FIT_OPTIONS, "sample": TEXT_OPTIONS}.get(step, ()))


def _seconds(t0: float) -> float:
    return round(time.perf_counter() - t0, 2)


def _is_url(value: str) -> bool:
    return "://" in value


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
    known = parameters(name)
    for key in params:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ShopgenError(f"{where}: {key!r} is not a parameter of the {name} step{hint}; "
                               f"its parameters are {', '.join(known)}")
    missing = [p.name for p in sig.parameters.values() if p.default is inspect.Parameter.empty
               and p.kind is not inspect.Parameter.VAR_KEYWORD and p.name not in params]
    if missing:
        raise ShopgenError(f"{where}: the {name} step needs {', '.join(missing)}; add {missing[0]}: ... to it")


def load_config(
    config: str | Path | Mapping[str, Any], overrides: Mapping[str, Any] | None = None,
) -> list[tuple[str, dict[str, Any], str]]:
    """Read and check a pipeline config before anything runs: [(step, params, where), ...].

    ```yaml
    vars: {workdir: ../out/pipeline, seed: 7}   # ${name} anywhere below; ${date} is today (YYYY-MM-DD)
    steps:
      - fit: {data: ../sample_data/products.csv, schema: ../shopgen/demo/product_catalog.yaml, out: "${workdir}/model"}
      - sample: {bundle: "${workdir}/model", rows: 1000, seed: "${seed}", output: "${workdir}/catalog.csv"}
      - validate: {data: "${workdir}/catalog.csv", schema: ../shopgen/demo/product_catalog.yaml}
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
    json_path: str | Path | None = None,
) -> dict[str, Any]:
    """Run a pipeline config's steps in order (`shopgen run CONFIG`); stops at the first failure.

    Errors carry the step: "pipelines/catalog.yaml: step 3 (validate): ...", with the error's own class
    (a failed validation stays ValidationFailed, exit 1).
    """
    if json_path is not None and (not str(json_path).endswith(".json") or not Path(json_path).resolve().parent.is_dir()):
        raise ShopgenError(f"--json {str(json_path)!r} must be a .json file in an existing folder")
    plan = load_config(config, overrides)
    t0 = time.perf_counter()
    results = []
    for name, params, where in plan:
        try:
            result = STEPS[name](**params)
        except ShopgenError as exc:
            raise type(exc)(f"{where}: {exc}") from None  # same class, same exit code (ValidationFailed: 1)
        results.append(result.to_dict())
        if echo is not None:
            echo(f"{name:<9} {result.describe()}")
    out = {"steps": results, "seconds": _seconds(t0)}
    if json_path is not None:
        import json

        from shopgen.sinks import write_text

        write_text(json.dumps(out, indent=2) + "\n", json_path)
    return out
