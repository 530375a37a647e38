"""The `shopgen` command. Errors are one line on stderr: exit 2 for bad input, 1 for failed validation.

Heavy libraries (torch, SDV, transformers, Great Expectations) are imported inside commands, after the
inputs are checked, so a typo fails in a fraction of a second and `--help` is instant.
"""

from __future__ import annotations

import logging
import sys
import traceback
import warnings

import typer

from shopgen.errors import OptionError, ShopgenError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Learn a product catalog; generate new, realistic, validated ones.")
schema_app = typer.Typer(no_args_is_help=True, help="Infer or inspect catalog schemas.")
app.add_typer(schema_app, name="schema")

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
    explain: bool = typer.Option(False, "--explain", help="Show the evidence behind every decision (shares, words, lengths)."),
) -> None:
    """Guess a schema from a catalog and say why: each column's kind, units, grid, rules and derived columns.

    The decision table goes to stdout with -o, else to stderr (stdout is the YAML); '?' marks doubtful ones.
    """
    from shopgen import app as steps

    result = steps.infer(data, output, name=name)
    if output is None:
        _out(result.schema.to_yaml())
        typer.echo(result.table(explain), err=True)
        return
    _out(result.table(explain))
    _out(result.describe())


@schema_app.command("ddl")
def schema_ddl(
    schema: str = typer.Argument(..., help="YAML schema, or a model bundle directory."),
    dialect: str = typer.Option("postgresql", help="postgresql, mariadb, mysql or sqlite."),
    table: str = typer.Option(None, help="Table name (default: the schema's name)."),
) -> None:
    """Print the CREATE TABLE that `shopgen seed` runs for a schema: types, NOT NULL, key, CHECKs."""
    from shopgen import app as steps

    _out(steps.ddl(schema, dialect, table))


# ---- fit ---------------------------------------------------------------------------------------
@app.command()
def fit(
    data: str = typer.Argument(..., help="Catalog file to learn (csv, parquet, jsonl), or a folder of a shop's tables (customers, products, purchase lines)."),
    out: str = typer.Option(..., "--out", help="Directory for the model bundle."),
    schema: str = typer.Option(None, "--schema", help="YAML schema (default: inferred from DATA and saved in the bundle)."),
    tabular: str = typer.Option("ctgan", help="Tabular model: ctgan, tvae, copula, or auto (each fitted on 80 % of the rows and judged on the rest; the one a classifier tells apart least from real rows is refitted on all: about twice the time)."),
    preset: str = typer.Option("fast", help="Model sizes and time budgets: fast, small or base."),
    epochs: int = typer.Option(None, min=1, help="Tabular epochs (default: as many as the preset's budget allows)."),
    batch_size: int = typer.Option(None, min=10, help="Tabular batch size."),
    tabular_minutes: float = typer.Option(None, min=0.05, help="Time budget of the tabular model."),
    max_train_minutes: float = typer.Option(None, min=0.05, help="Time budget of the text model."),
    text_epochs: int = typer.Option(None, min=1, help="Most epochs of text training."),
    text_base: str = typer.Option(None, help="Local Hugging Face causal-LM checkpoint to fine-tune instead of training from scratch."),
    text_precision: str = typer.Option(
        "fp32", help="Text training floats: fp32, bf16 (autocast), or auto (bf16 where this CPU runs it faster)."),
    seed: int = typer.Option(0, min=0, help="Training seed."),
    products: str = typer.Option("new", "--products", help="A shop: new also learns the products (with their text) so `sample --products new` can write a whole new shop; real keeps only the real catalog, and fits faster."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Learn a catalog (tabular model, then text model), or a whole shop; writes a bundle directory."""
    from shopgen import app as steps
    from shopgen.options import FitOptions

    options = FitOptions(tabular=tabular, preset=preset, epochs=epochs, batch_size=batch_size,
                         tabular_minutes=tabular_minutes, max_train_minutes=max_train_minutes, text_epochs=text_epochs,
                         text_base=text_base, text_precision=text_precision, seed=seed, products=products)
    result = steps.fit(data, out, options, schema=schema, show_progress=not quiet)
    for message in result.warnings:
        typer.echo(f"warning: {message}", err=True)
    if isinstance(result, steps.FitResult) and result.selection:
        scores = ", ".join(f"{k} {v:.3f}" for k, v in result.selection.items())
        typer.echo(f"tabular model chosen: {result.tabular_kind} (detection AUC on held-out rows, 0.5 best: {scores})",
                   err=True)
    _out(result.describe())


# ---- sample ------------------------------------------------------------------------------------
@app.command()
def sample(
    bundle: str = typer.Argument(..., help="Model bundle directory written by `shopgen fit`."),
    n: int = typer.Option(..., "-n", "--rows", min=1, help="Number of valid rows to write (a shop: new customers, with their purchases)."),
    output: str = typer.Option(..., "-o", "--output", help="Output file (.csv, .parquet, .jsonl) or database URL (sqlite:///x.db, postgresql://…, mysql://…); a shop: a new folder, or a database URL for every table."),
    seed: int = typer.Option(0, min=0, help="Same seed, bundle and --text-workers give the same catalog."),
    where: list[str] = typer.Option(None, "--where", help="Condition every row: COLUMN=VALUE or COLUMN=LOW..HIGH (repeatable)."),
    temperature: float = typer.Option(None, min=0.05, max=5.0, help="Text sampling temperature (default: the bundle's, 1.0)."),
    top_p: float = typer.Option(None, min=0.05, max=1.0, help="Text nucleus sampling mass (default: the bundle's own)."),
    guidance: float = typer.Option(None, min=0.0, max=10.0, help="Text classifier-free guidance: how hard the text follows its row (default: the bundle's; 0 is off). It steers the name and the description's first 32 tokens, which run the model twice per token; the rest follows them."),
    text_workers: int = typer.Option(None, "--text-workers", min=1, help="Processes writing text, one thread each (default: one per core torch uses; the text depends on it, as on the seed)."),
    guide_all_fields: bool = typer.Option(False, "--guide-all-fields", help="Guidance steers every text field, not only the name: a little more faithful text, for ~1.4x the text time."),
    guided_tokens: int = typer.Option(None, "--guided-tokens", min=0, help="How many of the description's first tokens guidance steers, where it picks its topic (default: the bundle's, 32; 0: the name only, faster)."),
    text_precision: str = typer.Option(None, "--text-precision", help="Type of the text decoder's matmuls: fp32, bf16, int8 (weights and activations quantized), or auto (the default: the faster of bf16 and int8 where a timing, taken once a machine, finds it 1.25x fp32's speed; else fp32)."),
    allow_copies: bool = typer.Option(False, help="Keep generated texts that copy a training text."),
    table: str = typer.Option(None, "--table", help="Table, when -o is a database (default: the schema's name)."),
    if_exists: str = typer.Option(None, "--if-exists", help="When the output exists: a file's replace (default) or fail; a database table's fail (default), replace or append."),
    csv_raw: bool = typer.Option(False, "--csv-raw", help="Write CSV text cells as they are, even those a spreadsheet would run as a formula (= + - @); by default they get a leading apostrophe."),
    products: str = typer.Option("real", "--products", help="A shop: the customers buy the real products (real) or as many new ones the bundle writes, with their text (new)."),
    fmt: str = typer.Option("parquet", "--format", help="A shop: its tables' file format in the output folder: parquet, csv or jsonl."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Generate N valid rows from a bundle and write them atomically (a file, or a database table); a shop's
    bundle writes every table of a new shop (a folder of tables, or a database, all or nothing)."""
    from shopgen import app as steps
    from shopgen.options import TextSampling

    text = TextSampling(temperature=temperature, top_p=top_p, guidance=guidance, guided_tokens=guided_tokens,
                        guide_all_fields=guide_all_fields, workers=text_workers, precision=text_precision,
                        allow_copies=allow_copies)
    result = steps.sample(bundle, n, output, seed=seed, conditions=where or None, text=text, table=table,
                          if_exists=if_exists, csv_raw=csv_raw, products=products, table_format=fmt, show_progress=not quiet)
    _out(result.describe())
    for note in result.notes():
        typer.echo(f"note: {note}", err=True)


# ---- seed --------------------------------------------------------------------------------------
@app.command("seed")
def seed_cmd(
    bundle: str = typer.Argument(..., help="Model bundle directory written by `shopgen fit`."),
    db: str = typer.Option(..., "--db", help="sqlite:///file.db (or a .db path), postgresql://user@host/db, mysql://user@host/db."),
    table: str = typer.Option(None, "--table", help="Table to fill, created from the bundle's schema (default: the schema's name); a shop's tables keep their names."),
    n: int = typer.Option(..., "-n", "--rows", min=1, help="Number of valid rows to load (a shop: new customers, with their purchases)."),
    if_exists: str = typer.Option("fail", "--if-exists", help="If the table exists: fail, replace or append (a shop: fail or replace, all its tables together)."),
    seed: int = typer.Option(0, min=0, help="Same seed, bundle and batch size give the same rows."),
    batch_size: int = typer.Option(1000, "--batch-size", min=1, help="Rows generated and loaded per batch."),
    products: str = typer.Option("real", "--products", help="A shop: the customers buy the real products (real) or new ones the bundle writes (new)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Fill a database table with N generated rows, all or nothing, streamed in batches; a shop's bundle fills
    every table of a new shop, parents first, with PRIMARY and FOREIGN KEYs, all or nothing."""
    from shopgen import app as steps

    result = steps.seed(db, table, bundle=bundle, rows=n, if_exists=if_exists, seed=seed, batch_size=batch_size,
                        products=products, show_progress=not quiet)
    _out(result.describe())


# ---- validate ----------------------------------------------------------------------------------
@app.command("validate")
def validate_cmd(
    data: str = typer.Argument(..., help="Catalog file to check, or a folder of a shop's tables."),
    schema: str = typer.Option(..., "--schema", help="YAML schema (or a bundle) to check against."),
) -> None:
    """Check a catalog (or a shop: every table, its keys and rollups) against a schema's expectations; exit 1 if any fails."""
    from shopgen import app as steps

    result = steps.validate(data, schema)
    for line in result.lines():
        _out(line)
    if not result.success:
        raise typer.Exit(1)


# ---- evaluate ----------------------------------------------------------------------------------
@app.command("evaluate")
def evaluate_cmd(
    real: str = typer.Argument(..., help="Real catalog: the rows the synthesizer was fitted on (csv, parquet, jsonl); or a folder of a real shop's tables."),
    synthetic: str = typer.Argument(..., help="Synthetic catalog to score (a shop: the folder `shopgen sample` wrote)."),
    schema: str = typer.Option(..., "--schema", help="YAML schema of both catalogs or shops, or a bundle."),
    report: str = typer.Option("report.html", "--report", help="Self-contained HTML report to write."),
    json_out: str = typer.Option(None, "--json", help="Also write every score to this JSON file."),
    holdout: str = typer.Option(
        "0.2", "--holdout",
        help="Real rows the synthesizer never saw: a fraction of REAL (seeded split; exact when the synthesizer "
             "was fitted on the rest) or a file of hold-out rows (then REAL is the training rows).",
    ),
    minimum: list[str] = typer.Option(None, "--min", help="Gate SCORE=VALUE: exit 1 if the score is below VALUE (repeatable)."),
    maximum: list[str] = typer.Option(None, "--max", help="Gate SCORE=VALUE: exit 1 if the score is above VALUE (repeatable)."),
    target: str = typer.Option(None, "--target", help="Column the utility model predicts (default: the main price)."),
    seed: int = typer.Option(0, min=0, help="Seed of the hold-out split and of sampled rows."),
) -> None:
    """Score a synthetic catalog against the real one: fidelity, text, privacy, utility; a shop: its purchase log,
    recommenders trained on it and tested on real customers, its tables, privacy. Exit 1 on a missed gate."""
    from shopgen import app as steps
    from shopgen.options import parse_gates

    result = steps.evaluate(real, synthetic, schema, report=report, json=json_out, holdout=holdout,
                            minimum=parse_gates(minimum, "--min"), maximum=parse_gates(maximum, "--max"),
                            target=target, seed=seed)
    _out(result.describe())
    _out(result.report.summary())
    result.check()
    if result.checked:
        _out(f"gates passed: {result.checked}")


# ---- run ---------------------------------------------------------------------------------------
@app.command("run")
def run_cmd(
    config: str = typer.Argument(..., help="Pipeline config (YAML): steps fit, sample, validate, seed, evaluate."),
    overrides: list[str] = typer.Option(None, "--set", help="Override a variable of the config: NAME=VALUE (repeatable)."),
    json_out: str = typer.Option(None, "--json", help="Also write every step's result to this JSON file."),
) -> None:
    """Run a pipeline config's steps in order (what the Airflow DAG runs); stops at the first failure."""
    from shopgen.pipeline import parse_overrides, run

    result = run(config, parse_overrides(overrides), echo=_out, json_path=json_out)  # checks it all before step 1
    _out(f"done: {len(result['steps'])} steps in {result['seconds']:.0f}s" + (f" -> {json_out}" if json_out else ""))


# ---- demo --------------------------------------------------------------------------------------
@app.command()
def demo(
    out: str = typer.Option("demo_output", help="Folder for the demo catalog, its schema, the bundle and the generated catalog."),
    rows: int = typer.Option(1000, "-n", "--rows", min=1, help="Rows to generate."),
    tabular: str = typer.Option("ctgan", help="Tabular model: ctgan, tvae, copula or auto (see shopgen fit --help)."),
    text_epochs: int = typer.Option(None, min=1, help="Most epochs of text training (default: the preset's budget decides)."),
    max_train_minutes: float = typer.Option(None, min=0.05, help="Time budget of the text model (default: the preset's)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Make the seeded demo catalog, fit the `fast` preset on it, sample, validate; show where everything is."""
    from shopgen import app as steps
    from shopgen.options import FitOptions

    options = FitOptions(tabular=tabular, text_epochs=text_epochs, max_train_minutes=max_train_minutes)
    result = steps.demo(out, rows, options, show_progress=not quiet)
    for line in result.lines():
        _out(line)
    if not result.validation.success:
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
        typer.echo(f"shopgen: error: {exc.flag_message() if isinstance(exc, OptionError) else exc}", err=True)
        return exc.exit_code
    except Exception as exc:  # an internal failure: still one line unless --verbose
        if verbose:
            traceback.print_exc()
        first = str(exc).splitlines()[0] if str(exc) else ""
        typer.echo(f"shopgen: internal error: {type(exc).__name__}: {first} (rerun with --verbose for the traceback)", err=True)
        return INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
