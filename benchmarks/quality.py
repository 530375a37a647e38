"""shopgen vs plain SDV on real catalogs, SDGym-style: fit and sample time, peak memory, quality, privacy, text.

For each catalog in ../shared/data: infer the schema, hold out 20 % of the rows (seed 0) and fit every
synthesizer on the other 80 % of the tabular columns (the schema's categorical, numeric and integer ones):

- shopgen ctgan / tvae / copula: `CatalogSynthesizer` with the text part off (a schema of the tabular
  columns and the rules), preset `fast`: rare levels grouped, the rules as SDV Inequality constraints,
  failing rows redrawn by validation; CTGAN/TVAE train `--epochs` (default 50, so the numbers do not
  depend on the machine's load; `--budget` uses the preset's 60 s time budget instead);
- plain SDV GaussianCopula / CTGAN / TVAE: default settings and the same epochs, on the same columns with
  the same sdtypes (numerical / categorical, as the evaluation metadata), no constraints;

then sample as many rows as the training part and score them with `shopgen.evaluation.evaluate` against
the same training part and hold-out. Each fit runs in a fresh process, so its peak memory (peak RSS above
the process after imports and data loading) and times are its own.

Text (the report's text scores, for text written from the hold-out rows' real conditions, so text is
judged apart from the tabular model): a naive baseline that gives each row the text of a random training
row of the same category (copies by construction), and shopgen's `fast` text preset trained once per
catalog on the training part (its 110 s budget; `--text-epochs N` for a load-independent model,
`--text skip` to leave it out).

Writes benchmarks/results/quality.{json,md} (numbers only, never catalog text); a run of some catalogs
keeps the saved results of the others.

    python benchmarks/quality.py                       # both catalogs, 15-25 min on 2 cores
    python benchmarks/quality.py --quick               # 5 epochs, 20 s of text training: a smoke run
    python benchmarks/quality.py --catalogs dmart --epochs 100 --text skip
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import multiprocessing
import os
import platform
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
HOLDOUT = 0.2
SEED = 0
SYNTHESIZERS = ["shopgen-ctgan", "shopgen-tvae", "shopgen-copula", "sdv-copula", "sdv-ctgan", "sdv-tvae"]
TABLE = "catalog"


# ---- the data ------------------------------------------------------------------------------------
def load(catalog: str):
    """(schema, tabular-only schema, train, hold-out); loaded once and handed to each worker process."""
    from shopgen.evaluation.report import split_holdout
    from shopgen.inference import infer_schema
    from shopgen.schema import CatalogSchema

    raw = pd.read_csv(DATA / catalog / "products.csv")
    schema = infer_schema(raw, name=catalog).schema
    df = schema.check_frame(raw, source=catalog)
    train, hold = split_holdout(df, HOLDOUT, SEED)
    tab = CatalogSchema(name=catalog, columns=tuple(schema.tabular_columns), rules=schema.rules)
    return schema, tab, train.reset_index(drop=True), hold.reset_index(drop=True)


def _rss_mb(field: str) -> float:
    """VmRSS / VmHWM of this process in MB (Linux); 0 elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


# ---- one fit + sample, in its own process -----------------------------------------------------------
def run_synthesizer(tab, train: pd.DataFrame, name: str, epochs: int | None, sdv_epochs: int) -> dict:
    """Fit `name` on the training rows' tabular columns and sample as many rows; times and peak memory."""
    warnings.filterwarnings("ignore")
    import logging

    for lib in ("sdv", "rdt", "copulas", "ctgan", "SingleTableSynthesizer"):
        logging.getLogger(lib).setLevel(logging.ERROR)
    family, kind = name.split("-")
    from sdv.metadata import Metadata
    from sdv.single_table import CTGANSynthesizer, GaussianCopulaSynthesizer, TVAESynthesizer

    if family == "shopgen":  # what fit and sample import on first use, so no timing pays for an import
        import great_expectations  # noqa: F401
        import sdv.cag  # noqa: F401

        import shopgen.text.model  # noqa: F401
        from shopgen.synthesizer import CatalogSynthesizer

    data = train[[c.name for c in tab.columns]]
    n = len(data)
    base = _rss_mb("VmRSS")
    out: dict = {"synthesizer": name}
    t0 = time.perf_counter()
    if family == "shopgen":
        model = CatalogSynthesizer(tab, tabular=kind, preset="fast", epochs=epochs, show_progress=False, seed=SEED).fit(data)
        out["fit_s"] = time.perf_counter() - t0
        out["epochs"] = model.tabular_model_.epochs_ if kind != "copula" else None
        t1 = time.perf_counter()
        synthetic, stats = model.sample(n, seed=1)
        out["sample_s"] = time.perf_counter() - t1
        out["redrawn_rows"] = stats.invalid
    else:
        md = Metadata()
        md.add_table(TABLE)
        for col in tab.columns:
            md.add_column(col.name, table_name=TABLE, sdtype="numerical" if col.is_numeric else "categorical")
        if kind == "copula":
            synth = GaussianCopulaSynthesizer(md)
            out["epochs"] = None
        else:
            cls = CTGANSynthesizer if kind == "ctgan" else TVAESynthesizer
            synth = cls(md, epochs=sdv_epochs, enable_gpu=False)
            out["epochs"] = sdv_epochs
        import torch

        np.random.seed(SEED)  # as shopgen seeds its fits, so a re-run gives the same plain SDV models
        torch.manual_seed(SEED)
        with contextlib.redirect_stderr(io.StringIO()):  # SDV's progress bars
            synth.fit({TABLE: data})
            out["fit_s"] = time.perf_counter() - t0
            t1 = time.perf_counter()
            synth._set_random_state(1)  # SDV 2.0 has no public seed for sample()
            synthetic = synth.sample(n)[TABLE]
        out["sample_s"] = time.perf_counter() - t1
        out["redrawn_rows"] = None
    out["peak_mb"] = max(_rss_mb("VmHWM") - base, 0.0)
    out["synthetic"] = synthetic
    return out


def run_text(schema, train: pd.DataFrame, hold: pd.DataFrame, seconds: float | None, epochs: float | None) -> dict:
    """shopgen's `fast` text preset fitted on the training part, writing text for the hold-out rows.

    `epochs` (with no time budget) makes the model independent of the machine's load; default: the preset.
    """
    warnings.filterwarnings("ignore")
    from shopgen.presets import get_preset
    from shopgen.text.estimator import TextModel

    base = _rss_mb("VmRSS")
    t0 = time.perf_counter()
    if epochs is not None:
        seconds = 1e9
    model = TextModel(get_preset("fast").text, max_seconds=seconds, max_epochs=epochs, seed=SEED)
    model.fit(schema, train, show_progress=False)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    texts, copied, redrawn = model.generate(hold, seed=1, show_progress=False)
    synthetic = hold.copy()
    for col in texts.columns:
        synthetic[col] = texts[col].to_numpy()
    synthetic = synthetic[~copied.to_numpy()]  # as CatalogSynthesizer.sample does: rows still copying are dropped
    return {"fit_s": fit_s, "rows_dropped_as_copies": int(copied.sum()), "sample_s": time.perf_counter() - t0, "peak_mb": max(_rss_mb("VmHWM") - base, 0.0),
            "epochs": round(model.stats_.epochs, 2), "synthetic": synthetic, "redrawn": redrawn}


def _child(conn, fn, args) -> None:
    try:
        result = ("ok", fn(*args))
    except BaseException as exc:  # sent back and re-raised in the parent
        result = ("error", f"{type(exc).__name__}: {exc}")
    try:  # CTGAN's joblib workers idle for 300 s before they exit; end them with the process
        from joblib.externals.loky import reusable_executor

        if reusable_executor._executor is not None:
            reusable_executor._executor.shutdown(wait=True, kill_workers=True)
    except Exception:
        pass
    conn.send(result)
    conn.close()


def in_process(fn, *args):
    """Run `fn(*args)` in a fresh Python process (spawned: nothing inherited but the environment).

    The process is ended once its result is back: CTGAN's joblib workers would otherwise keep it alive
    for their 300 s idle timeout.
    """
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, fn, args))
    proc.start()
    child.close()
    status, value = parent.recv()
    proc.join(5)
    if proc.is_alive():
        proc.terminate()
        proc.join()
    if status != "ok":
        raise RuntimeError(f"{fn.__name__} failed in its process: {value}")
    return value


# ---- text baseline -------------------------------------------------------------------------------
def category_column(schema, train: pd.DataFrame) -> str | None:
    """The catalog's category: the categorical column named like one with the fewest levels, else the text's
    first categorical condition (wish_summer_2020 has no category column)."""
    named = [c.name for c in schema.of_type("categorical") if "categ" in c.name.lower()]
    if named:
        return min(named, key=lambda n: train[n].nunique())
    return next((c for c in schema.conditions if schema.column(c).type == "categorical"), None)


def naive_text(schema, train: pd.DataFrame, hold: pd.DataFrame, seed: int = SEED) -> tuple[pd.DataFrame, str | None]:
    """Each hold-out row gets every text column of a random training row of the same category."""
    by = category_column(schema, train)
    rng = np.random.default_rng(seed)
    texts = [c.name for c in schema.text_columns]
    out = hold.copy()
    groups = train.groupby(train[by].astype(str)).indices if by else {}
    picks = []
    for value in (hold[by].astype(str) if by else [None] * len(hold)):
        pool = groups.get(value)
        picks.append(rng.choice(pool) if pool is not None and len(pool) else rng.integers(len(train)))
    for col in texts:
        out[col] = train[col].to_numpy()[np.array(picks)]
    return out, by


# ---- the run -------------------------------------------------------------------------------------
SCORE_COLUMNS = ["quality", "column_shapes", "column_pair_trends", "diagnostic", "rule_violations", "invalid_rows",
                 "dcr_share", "exact_copies", "utility"]
TEXT_COLUMNS = ["text_consistency", "price_coherence", "text_copy_rate", "text_length_ks"]


def bench_catalog(catalog: str, args: argparse.Namespace) -> dict:
    from shopgen.evaluation.report import evaluate, text_scores

    schema, tab, train, hold = load(catalog)
    cols = [c.name for c in tab.columns]
    rows = []
    for name in args.synthesizers:
        t0 = time.perf_counter()
        result = in_process(run_synthesizer, tab, train, name, args.shopgen_epochs, args.sdv_epochs)
        wall = time.perf_counter() - t0
        synthetic = result.pop("synthetic")
        t0 = time.perf_counter()
        report = evaluate(train[cols], synthetic, tab, holdout=hold[cols], seed=SEED)
        result["evaluate_s"] = time.perf_counter() - t0
        result["wall_s"] = wall
        result.update({k: report.scores.get(k) for k in SCORE_COLUMNS})
        result["shapes"] = {k[6:]: v for k, v in report.scores.items() if k.startswith("shape_") and not k.endswith("_real")}
        result["pairs_losing"] = _worst_pairs(report)
        failures = report.details["tabular"].failures
        result["failed_expectations"] = dict(sorted(failures.items(), key=lambda kv: -kv[1])[:5])
        result["catalog"] = catalog
        result["load_1min"] = round(os.getloadavg()[0], 2)  # other work on the machine while this ran
        rows.append(result)
        print(json.dumps({k: _round(v) for k, v in result.items() if k not in ("shapes", "pairs_losing", "failed_expectations")}, default=_plain), flush=True)
    reference = {k: report.scores.get(f"{k}_real") for k in SCORE_COLUMNS} if rows else {}
    reference["shapes"] = {k[6:-5]: v for k, v in report.scores.items() if k.startswith("shape_") and k.endswith("_real")} if rows else {}

    text_rows = []
    if schema.text_columns:
        naive, by = naive_text(schema, train, hold)
        t0 = time.perf_counter()
        scores = text_scores(train, hold, naive, schema, SEED)
        text_rows.append({"method": f"naive: random real text of the same {by or 'catalog'}", "fit_s": 0.0,
                          "sample_s": 0.0, "evaluate_s": time.perf_counter() - t0, **scores})
        if args.text != "skip":
            result = in_process(run_text, schema, train, hold, args.text_seconds, args.text_epochs)
            synthetic = result.pop("synthetic")
            t0 = time.perf_counter()
            scores = text_scores(train, hold, synthetic, schema, SEED)
            text_rows.append({"method": "shopgen fast text preset", **result, "evaluate_s": time.perf_counter() - t0,
                              **scores})
        for r in text_rows:
            print(json.dumps({k: _round(v) for k, v in r.items() if k in ("method", "fit_s", *TEXT_COLUMNS)}, default=_plain), flush=True)
    return {"catalog": catalog, "rows": {"train": len(train), "holdout": len(hold)}, "tabular_columns": len(cols),
            "rules": [str(r) for r in schema.rules], "synthesizers": rows, "real_holdout": reference, "text": text_rows}


def _worst_pairs(report, k: int = 5) -> list:
    pairs = report.details["tabular"].pairs
    if not len(pairs):
        return []
    scored = pairs.dropna(subset=["Score"]).assign(gap=lambda d: d["Score (real)"] - d["Score"]).nsmallest(k, "Score")
    return [[a, b, round(float(s), 3), None if pd.isna(r) else round(float(r), 3)]
            for a, b, s, r in zip(scored["Column 1"], scored["Column 2"], scored["Score"], scored["Score (real)"])]


def _plain(v):
    return v.item() if hasattr(v, "item") else str(v)


def _round(v):
    if isinstance(v, float):
        return round(v, 4)
    return v


def _f(v, pct: bool = False) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "n/a"
    return f"{v:.1%}" if pct else f"{v:.3f}"


def _setup(st: dict) -> str:
    shopgen_epochs = "the fast preset's 60 s budget" if st["epochs"] is None else f"{st['epochs']} epochs"
    text = ("skipped" if st["text"] == "skip" else f"{st['text_epochs']} epochs" if st.get("text_epochs")
            else f"{st.get('text_seconds') or 110:.0f} s budget")
    return (f"Run {st['date']} on {st['machine']}; load average before / after {st['load_before']} / "
            f"{st['load_after']}; {st['seconds'] / 60:.1f} min. shopgen CTGAN/TVAE: {shopgen_epochs}; plain SDV "
            f"CTGAN/TVAE: {st['sdv_epochs']} epochs; shopgen text: {text}. `tabular.py` sha256 {st['tabular_py_sha256']}.")


def markdown(results: list[dict]) -> str:
    lines = ["# Tabular quality, privacy and text: shopgen vs plain SDV", "",
             f"Each catalog: schema inferred, {HOLDOUT:.0%} of the rows held out (seed {SEED}); every synthesizer "
             "fitted on the other rows' tabular columns in a fresh process, then sampled as many rows as it was "
             "fitted on; scores from `shopgen.evaluation.evaluate` against the training part and the hold-out. "
             "shopgen = `CatalogSynthesizer` with the text off, preset `fast` (rare levels grouped and drawn back "
             "given a parent column, schema rules as constraints, invalid rows redrawn). Plain SDV = default "
             "synthesizers on the same columns and sdtypes, no constraints. Peak MB: peak RSS above the process "
             "after imports. Times are wall seconds on the machine and load stated per catalog.", ""]
    cols = ["synthesizer", "epochs", "fit s", "sample s", "peak MB", "quality", "column shapes", "pair trends",
            "diagnostic", "rule violations", "invalid rows", "DCR share", "exact copies", "utility", "evaluate s"]
    for res in results:
        rules = ", ".join(res["rules"]) if len(res["rules"]) <= 3 else f"{len(res['rules'])} inferred, e.g. {res['rules'][0]}"
        lines += [f"## {res['catalog']} ({res['rows']['train']} training rows, {res['rows']['holdout']} hold-out, "
                  f"{res['tabular_columns']} tabular columns, rules: {rules or 'none'})", "", _setup(res["settings"]), "",
                  "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for r in res["synthesizers"]:
            lines.append("| " + " | ".join([
                r["synthesizer"], str(r["epochs"] if r["epochs"] is not None else "–"), f"{r['fit_s']:.1f}",
                f"{r['sample_s']:.1f}", f"{r['peak_mb']:.0f}", _f(r["quality"]), _f(r["column_shapes"]),
                _f(r["column_pair_trends"]), _f(r["diagnostic"]), _f(r["rule_violations"], True),
                _f(r["invalid_rows"], True), _f(r["dcr_share"]), _f(r["exact_copies"], True), _f(r["utility"]),
                f"{r['evaluate_s']:.1f}"]) + " |")
        ref = res["real_holdout"]
        if ref:
            lines.append("| *real hold-out (reference)* | – | – | – | – | " + " | ".join([
                _f(ref.get("quality")), _f(ref.get("column_shapes")), _f(ref.get("column_pair_trends")), "–",
                _f(ref.get("rule_violations"), True), _f(ref.get("invalid_rows"), True), "0.500 (by definition)",
                _f(ref.get("exact_copies"), True), "1.000 (by definition)", "–"]) + " |")
        failing = [f"{r['synthesizer']}: " + ", ".join(f"{k} ({v} rows)" for k, v in list(r["failed_expectations"].items())[:3])
                   for r in res["synthesizers"] if r.get("failed_expectations")]
        if failing:
            lines += ["", "Most-failed schema expectations: " + "; ".join(failing) + "."]
        ours = [r for r in res["synthesizers"] if r["synthesizer"].startswith("shopgen") and r["quality"] is not None]
        theirs = [r for r in res["synthesizers"] if r["synthesizer"].startswith("sdv") and r["quality"] is not None]
        if ours and theirs:
            best_o, best_t = max(ours, key=lambda r: r["quality"]), max(theirs, key=lambda r: r["quality"])
            broken = max(r["rule_violations"] for r in ours)
            gap = best_o["quality"] - best_t["quality"]
            lines += ["", f"Best shopgen: **{best_o['synthesizer']} {best_o['quality']:.3f}**; best plain SDV: "
                      f"**{best_t['synthesizer']} {best_t['quality']:.3f}**; difference **{gap:+.3f}** (target "
                      f"≥ +0.05{', met' if gap >= 0.05 else ', missed'}). Rows breaking a rule, worst shopgen "
                      f"synthesizer: {broken:.1%}."]
            if best_o.get("pairs_losing"):
                lines += ["", f"Lowest column pair trends of {best_o['synthesizer']} (real hold-out's score in brackets): "
                          + "; ".join(f"{a} × {b} {s:.2f} ({_f(r)})" for a, b, s, r in best_o["pairs_losing"]) + "."]
        if res["text"]:
            tcols = ["method", "fit s", "generate s", "text consistency (real)", "price coherence (real)",
                     "copy rate (real)", "length KS"]
            lines += ["", "Text, written for the hold-out rows' real conditions (the report's text scores; in brackets "
                      "the hold-out's own text):", "", "| " + " | ".join(tcols) + " |", "|" + "---|" * len(tcols)]
            for t in res["text"]:
                lines.append("| " + " | ".join([
                    t["method"], f"{t['fit_s']:.0f}", f"{t['sample_s']:.1f}",
                    f"{_f(t.get('text_consistency'))} ({_f(t.get('text_consistency_real'))})",
                    f"{_f(t.get('price_coherence'))} ({_f(t.get('price_coherence_real'))})",
                    f"{_f(t.get('text_copy_rate'), True)} ({_f(t.get('text_copy_rate_real'), True)})",
                    _f(t.get("text_length_ks"))]) + " |")
        lines.append("")
    lines += ["Columns: quality = SDMetrics QualityReport (as SDV's `evaluate_quality`), the mean of column shapes "
              "and column pair trends; diagnostic = SDMetrics DiagnosticReport; rule violations = rows breaking a "
              "schema rule; invalid rows = rows failing any schema expectation; DCR share = share of synthetic rows "
              "nearer to a training row than the hold-out's median (0.5 ideal; below it, rows are further from the "
              "training rows than unseen real rows are); utility = hold-out R² of a model predicting the main price "
              "trained on synthetic rows over the same model trained on real rows. Text consistency = mean accuracy of "
              "real-text classifiers predicting the row's categorical conditions; copy rate = texts equal to a "
              "training text (real: hold-out texts equal to a training text, e.g. one product in several pack sizes).",
              "Per-column shapes, the lowest column pairs and the epoch probes of each run: quality.json.",
              "", "Re-run on a quiet machine: `.venv/bin/python benchmarks/quality.py` (both catalogs, 15-25 min on 2 "
              "cores; `--catalogs dmart` re-runs one and keeps the others; `--quick` for a 5-epoch smoke run; "
              "`--budget` gives shopgen the preset's time budget instead of fixed epochs; `--help`)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalogs", nargs="+", default=None, help="folders of ../shared/data (default: all)")
    parser.add_argument("--synthesizers", nargs="+", default=SYNTHESIZERS, choices=SYNTHESIZERS)
    parser.add_argument("--epochs", type=int, default=50, help="CTGAN/TVAE epochs, shopgen and plain SDV alike")
    parser.add_argument("--sdv-epochs", type=int, default=None, help="plain SDV CTGAN/TVAE epochs (default: --epochs)")
    parser.add_argument("--budget", action="store_true",
                        help="shopgen CTGAN/TVAE train for the fast preset's time budget (60 s) instead of --epochs "
                             "(what a user gets; depends on the machine's load)")
    parser.add_argument("--text", choices=["fast", "skip"], default="fast", help="train shopgen's fast text preset or not")
    parser.add_argument("--text-seconds", type=float, default=None, help="text training budget (default: the preset's, 110 s)")
    parser.add_argument("--text-epochs", type=int, default=None,
                        help="train the text model for this many epochs, with no time budget (load-independent)")
    parser.add_argument("--quick", action="store_true", help="5 epochs everywhere, 20 s of text training")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for quality.json and quality.md")
    parser.add_argument("--markdown-only", action="store_true", help="rewrite quality.md from quality.json, run nothing")
    args = parser.parse_args()
    path = args.out / "quality.json"
    saved = json.loads(path.read_text())["results"] if path.exists() else []  # runs of other catalogs are kept
    if args.markdown_only:
        (args.out / "quality.md").write_text(markdown(saved))
        return
    if args.quick:
        args.epochs, args.sdv_epochs, args.text_seconds = 5, 5, 20.0
    args.sdv_epochs = args.sdv_epochs or args.epochs
    args.shopgen_epochs = None if args.budget else args.epochs
    catalogs = args.catalogs or sorted(p.parent.name for p in DATA.glob("*/products.csv"))
    if not catalogs:
        raise SystemExit(f"no catalogs under {DATA}")
    args.out.mkdir(parents=True, exist_ok=True)
    for catalog in catalogs:
        start, load_before = time.perf_counter(), os.getloadavg()
        result = bench_catalog(catalog, args)
        result["settings"] = {
            "date": time.strftime("%Y-%m-%d %H:%M"), "seconds": round(time.perf_counter() - start, 1),
            "machine": f"{os.cpu_count()} CPU cores ({platform.machine()}), Python {platform.python_version()}",
            "load_before": [round(x, 2) for x in load_before], "load_after": [round(x, 2) for x in os.getloadavg()],
            "epochs": args.shopgen_epochs, "sdv_epochs": args.sdv_epochs, "quick": args.quick, "text": args.text,
            "text_epochs": args.text_epochs, "text_seconds": args.text_seconds,
            "tabular_py_sha256": hashlib.sha256((ROOT / "shopgen" / "tabular.py").read_bytes()).hexdigest()[:16],
        }
        clean = json.loads(json.dumps(result, default=_plain), parse_constant=lambda _: None)  # NaN -> null
        order = {c: i for i, c in enumerate(sorted({r["catalog"] for r in saved} | {catalog}))}
        saved = sorted([r for r in saved if r["catalog"] != catalog] + [clean], key=lambda r: order[r["catalog"]])
        path.write_text(json.dumps({"results": saved}, indent=2) + "\n")  # after each catalog
        (args.out / "quality.md").write_text(markdown(saved))
    print((args.out / "quality.md").read_text())


if __name__ == "__main__":
    main()
