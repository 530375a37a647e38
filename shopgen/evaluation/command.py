"""The logic of `shopgen evaluate`, so the CLI command is a thin wrapper (and testable without a shell).

Inputs are checked before anything heavy runs: the schema, the gates' syntax and names, the output
paths and the hold-out; a typo fails in a second, with nothing written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from shopgen.errors import ShopgenError
from shopgen.evaluation.gates import GatesFailed, check_names, parse_gates


def _output(path: str | Path, suffix: str, option: str) -> Path:
    path = Path(path)
    if path.suffix.lower() != suffix:
        raise ShopgenError(f"{option} {str(path)!r} must end in {suffix}")
    if not path.parent.exists():
        raise ShopgenError(f"{option} folder {str(path.parent)!r} does not exist; create it first")
    return path


def _holdout(value: str | float | None) -> tuple[float | None, Path | None]:
    """'0.2' -> a fraction of the real rows; anything else is a file of real rows the synthesizer never saw."""
    if value is None:
        return 0.2, None
    try:
        fraction = float(value)
    except ValueError:
        path = Path(str(value))
        if not path.is_file():
            raise ShopgenError(
                f"--holdout {value!r} is neither a fraction like 0.2 nor an existing file of real hold-out rows"
            ) from None
        return None, path
    if not 0 < fraction < 1:
        raise ShopgenError(f"--holdout {value} is outside (0, 1); use a fraction like 0.2 or a file")
    return fraction, None


def run_evaluate_cli(
    real: str | Path,
    synthetic: str | Path,
    schema: str | Path,
    report: str | Path,
    json_path: str | Path | None = None,
    holdout: str | None = None,
    minimum: list[str] | None = None,
    maximum: list[str] | None = None,
    target: str | None = None,
    seed: int = 0,
    echo: Callable[[str], None] = print,
) -> None:
    """Evaluate, write the HTML (and JSON) report, `echo` a summary; raise GatesFailed (exit 1) on a missed gate."""
    from shopgen.schema import CatalogSchema
    from shopgen.sources import read_catalog

    mins, maxs = parse_gates(minimum, "--min"), parse_gates(maximum, "--max")
    cat = CatalogSchema.from_yaml(schema)
    from shopgen.evaluation.report import possible_names

    valid = possible_names(cat)
    check_names(mins, valid, "--min")
    check_names(maxs, valid, "--max")
    report_path = _output(report, ".html", "--report")
    json_out = _output(json_path, ".json", "--json") if json_path else None
    fraction, holdout_file = _holdout(holdout)
    if target is not None:
        cat.column(target)
    t0 = time.perf_counter()
    real_df, synth_df = read_catalog(real), read_catalog(synthetic)
    hold_df = read_catalog(holdout_file) if holdout_file else None
    from shopgen.evaluation.report import evaluate

    kwargs = {"holdout": hold_df} if hold_df is not None else {"holdout_fraction": fraction}
    result = evaluate(real_df, synth_df, cat, target=target, seed=seed, **kwargs)
    result.to_html(report_path)
    if json_out:
        result.to_json(json_out)
    rows = result.meta["rows"]
    echo(f"evaluated {rows['synthetic']} synthetic rows against {rows['train']} training and {rows['holdout']} "
         f"hold-out rows in {time.perf_counter() - t0:.1f}s -> {report_path}" + (f", {json_out}" if json_out else ""))
    echo(result.summary())
    failed = result.check(mins, maxs)
    if failed:
        raise GatesFailed("gates failed: " + "; ".join(failed))
    if mins or maxs:
        echo(f"gates passed: {len(mins) + len(maxs)}")
