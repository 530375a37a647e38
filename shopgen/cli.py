"""The `shopgen` command. Errors are one line on stderr: exit 2 for bad input, 1 for failed validation.

Heavy libraries (torch, SDV, transformers, Great Expectations) are imported inside commands, after the
inputs are checked, so a typo fails in a fraction of a second and `--help` is instant.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
import warnings
from pathlib import Path

import typer

from shopgen.errors import ShopgenError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Learn a product catalog; generate new, realistic, validated ones.")
schema_app = typer.Typer(no_args_is_help=True, help="Infer or inspect catalog schemas.")
app.add_typer(schema_app, name="schema")

REPO = Path(__file__).resolve().parents[1]
INTERNAL_ERROR = 3


@app.callback()
def _options(verbose: bool = typer.Option(False, "--verbose", "-v", help="Show tracebacks and library warnings.")) -> None:
    if not verbose:
        warnings.filterwarnings("ignore")
        for name in ("sdv", "rdt", "copulas", "ctgan", "great_expectations", "transformers", "SingleTableSynthesizer"):
            logging.getLogger(name).setLevel(logging.ERROR)


def _out(message: str) -> None:
    typer.echo(message)


# ---- schema ------------------------------------------------------------------------------------
@schema_app.command("infer")
def schema_infer(
    data: str = typer.Argument(..., help="Catalog file (csv, parquet, jsonl)."),
    output: str = typer.Option(None, "-o", "--output", help="Where to write the YAML schema (default: stdout)."),
    name: str = typer.Option(None, help="Schema name (default: the file's stem)."),
) -> None:
    """Guess a schema from a catalog: types, ranges, ids, text columns and rules."""
    from shopgen.schema import CatalogSchema
    from shopgen.sinks import write_text
    from shopgen.sources import read_catalog

    df = read_catalog(data)
    schema = CatalogSchema.infer(df, name=name or Path(data).stem)
    if output is None:
        _out(schema.to_yaml())
        return
    write_text(schema.to_yaml(), output)
    kinds = {t: [c.name for c in schema.of_type(t)] for t in ("id", "categorical", "numeric", "integer", "text")}
    _out(f"wrote {output}: " + "; ".join(f"{t}: {len(v)}" for t, v in kinds.items() if v)
         + f"; text: {kinds['text']}; rules: {[str(r) for r in schema.rules]}")


# ---- fit ---------------------------------------------------------------------------------------
@app.command()
def fit(
    data: str = typer.Argument(..., help="Catalog file to learn (csv, parquet, jsonl)."),
    out: str = typer.Option(..., "--out", help="Directory for the model bundle."),
    schema: str = typer.Option(None, "--schema", help="YAML schema (default: inferred from DATA and saved in the bundle)."),
    tabular: str = typer.Option("ctgan", help="Tabular model: ctgan, tvae or copula."),
    preset: str = typer.Option("fast", help="Model sizes and time budgets: fast, small or base."),
    epochs: int = typer.Option(None, min=1, help="Tabular epochs (default: as many as the preset's budget allows)."),
    batch_size: int = typer.Option(None, min=10, help="Tabular batch size."),
    tabular_minutes: float = typer.Option(None, min=0.05, help="Time budget of the tabular model."),
    max_train_minutes: float = typer.Option(None, min=0.05, help="Time budget of the text model."),
    text_epochs: int = typer.Option(None, min=1, help="Most epochs of text training."),
    text_base: str = typer.Option(None, help="Local Hugging Face causal-LM checkpoint to fine-tune instead of training from scratch."),
    seed: int = typer.Option(0, help="Training seed."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Learn a catalog: tabular model, then text model; writes a bundle directory."""
    from shopgen.presets import get_preset
    from shopgen.schema import CatalogSchema
    from shopgen.sources import read_catalog
    from shopgen.tabular import KINDS

    if tabular not in KINDS:
        raise ShopgenError(f"--tabular {tabular!r} is unknown; use one of {', '.join(KINDS)}")
    get_preset(preset)
    if text_base is not None and not Path(text_base).is_dir():
        raise ShopgenError(f"--text-base {text_base!r} is not a directory; give a local save_pretrained checkpoint")
    cat = CatalogSchema.from_yaml(schema) if schema else None
    df = read_catalog(data)
    if cat is None:
        cat = CatalogSchema.infer(df, name=Path(data).stem)
    cat.check_frame(df, source=data)
    from shopgen.synthesizer import CatalogSynthesizer

    t0 = time.perf_counter()
    synth = CatalogSynthesizer(
        cat, tabular=tabular, preset=preset, epochs=epochs, batch_size=batch_size,
        tabular_max_seconds=tabular_minutes * 60 if tabular_minutes else None,
        text_max_seconds=max_train_minutes * 60 if max_train_minutes else None,
        text_epochs=text_epochs, text_base=text_base, seed=seed, show_progress=not quiet,
    ).fit(df)
    synth.save(out)
    text = synth.text_model_.stats_ if synth.text_model_ else None
    _out(
        f"fitted {len(df)} rows in {time.perf_counter() - t0:.0f}s "
        f"(tabular {synth.tabular} {synth.fit_seconds_['tabular']}s, {synth.tabular_model_.epochs_} epochs; "
        + (f"text {synth.fit_seconds_['text']}s, {text.steps} steps, val loss {text.val_loss}" if text else "no text columns")
        + f") -> {out}"
    )


# ---- sample ------------------------------------------------------------------------------------
@app.command()
def sample(
    bundle: str = typer.Argument(..., help="Model bundle directory written by `shopgen fit`."),
    n: int = typer.Option(..., "-n", "--rows", min=1, help="Number of valid rows to write."),
    output: str = typer.Option(..., "-o", "--output", help="Output file: .csv, .parquet or .jsonl."),
    seed: int = typer.Option(0, help="Same seed and bundle give the same catalog."),
    where: list[str] = typer.Option(None, "--where", help="Condition every row: COLUMN=VALUE or COLUMN=LOW..HIGH (repeatable)."),
    temperature: float = typer.Option(None, min=0.05, max=5.0, help="Text sampling temperature (default: the bundle's, 1.0)."),
    top_p: float = typer.Option(None, min=0.05, max=1.0, help="Text nucleus sampling mass (default: the bundle's, 0.95)."),
    allow_copies: bool = typer.Option(False, help="Keep generated texts that copy a training text."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Generate N valid rows from a bundle and write them atomically."""
    from shopgen.bundle import verify_bundle
    from shopgen.conditions import parse_where
    from shopgen.schema import CatalogSchema
    from shopgen.sinks import check_target

    target = check_target(output)
    verify_bundle(bundle)
    conditions = parse_where(where or [], CatalogSchema.from_yaml(Path(bundle) / "schema.yaml"))
    from shopgen.sinks import write
    from shopgen.synthesizer import CatalogSynthesizer

    t0 = time.perf_counter()
    synth = CatalogSynthesizer.load(bundle, show_progress=not quiet)
    catalog = synth.sample(n, seed=seed, conditions=conditions, allow_copies=allow_copies,
                           temperature=temperature, top_p=top_p)
    write(catalog, target)
    s = synth.last_sample_stats_
    _out(
        f"wrote {len(catalog)} valid rows to {target} in {time.perf_counter() - t0:.1f}s "
        f"({s['drawn']} drawn in {s['rounds']} round(s), {s['invalid']} failed validation and were redrawn, "
        f"{s['copies_redrawn']} texts redrawn for copying training text)"
    )


# ---- validate ----------------------------------------------------------------------------------
@app.command("validate")
def validate_cmd(
    data: str = typer.Argument(..., help="Catalog file to check."),
    schema: str = typer.Option(..., "--schema", help="YAML schema to check against."),
) -> None:
    """Check a catalog against a schema's expectations; exit 1 if any fails."""
    from shopgen.schema import CatalogSchema
    from shopgen.sources import read_catalog

    cat = CatalogSchema.from_yaml(schema)
    df = read_catalog(data)
    from shopgen.validation import validate

    result = validate(df, cat)
    for label in result.labels:
        if label in result.failures:
            _out(f"FAIL  {label}: {result.failures[label]} rows, e.g. {result.examples.get(label, [])}")
        else:
            _out(f"ok    {label}")
    _out(("PASS  " if result.success else "FAIL  ") + result.summary())
    if not result.success:
        raise typer.Exit(1)


# ---- demo --------------------------------------------------------------------------------------
@app.command()
def demo(
    out: str = typer.Option("demo_output", help="Folder for the bundle, catalog and schema."),
    rows: int = typer.Option(1000, "-n", "--rows", min=1, help="Rows to generate."),
    tabular: str = typer.Option("ctgan", help="Tabular model: ctgan, tvae or copula."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Fit the `fast` preset on sample_data/, sample, validate, and show where everything is."""
    data, schema_path = REPO / "sample_data" / "products.csv", REPO / "schemas" / "product_catalog.yaml"
    if not data.is_file() or not schema_path.is_file():
        raise ShopgenError(f"demo data not found under {REPO}; run the demo from a shopgen checkout")
    from shopgen.schema import CatalogSchema
    from shopgen.sinks import write
    from shopgen.sources import read_catalog
    from shopgen.synthesizer import CatalogSynthesizer
    from shopgen.validation import validate

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    schema = CatalogSchema.from_yaml(schema_path)
    df = read_catalog(data)
    t0 = time.perf_counter()
    synth = CatalogSynthesizer(schema, tabular=tabular, preset="fast", show_progress=not quiet).fit(df)
    synth.save(folder / "model")
    t1 = time.perf_counter()
    catalog = synth.sample(rows, seed=7)
    t2 = time.perf_counter()
    write(catalog, folder / "catalog.csv")
    result = validate(catalog, schema)
    _out(f"5 of {len(catalog)} generated products:")
    for record in catalog.head(5).to_dict("records"):
        text = {c.name: record.pop(c.name) for c in schema.text_columns}
        _out("  " + " | ".join(f"{k}={v}" for k, v in record.items()))
        for name, value in text.items():
            _out(f"    {name}: {value}")
    _out(f"fit   {t1 - t0:.0f}s on {len(df)} sample products -> {folder / 'model'}")
    _out(f"sample {t2 - t1:.0f}s -> {folder / 'catalog.csv'} ({len(catalog)} rows)")
    _out(("PASS  " if result.success else "FAIL  ") + result.summary())
    _out(f"next: shopgen sample {folder / 'model'} -n 5000 -o catalog.parquet --seed 1")
    if not result.success:
        raise typer.Exit(1)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the command, turning every failure into one line on stderr and an exit code."""
    args = list(sys.argv[1:] if argv is None else argv) or ["--help"]
    verbose = "--verbose" in args or "-v" in args
    command = typer.main.get_command(app)
    try:
        code = command.main(args=args, prog_name="shopgen", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        typer.echo("shopgen: aborted", err=True)
        return 130
    except typer.TyperException as exc:  # usage errors: unknown option, missing argument, bad value
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        typer.echo(f"shopgen: error: {message} (see 'shopgen {' '.join(args[:1])} --help')", err=True)
        return 2
    except ShopgenError as exc:
        if verbose:
            traceback.print_exc()
        typer.echo(f"shopgen: error: {exc}", err=True)
        return exc.exit_code
    except Exception as exc:  # an internal failure: still one line unless --verbose
        if verbose:
            traceback.print_exc()
        first = str(exc).splitlines()[0] if str(exc) else ""
        typer.echo(f"shopgen: internal error: {type(exc).__name__}: {first} (rerun with --verbose for the traceback)", err=True)
        return INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
