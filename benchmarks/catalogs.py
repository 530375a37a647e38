"""Every catalog, untouched, from schema inference to evaluation: does shopgen work on catalogs it never saw?

For each catalog (every folder of ../shared/data with a products.csv, plus the demo catalog
sample_data/products.csv), with no hand edits and nothing catalog-specific in this file:

1. read it (`shopgen.sources.read_catalog`) and infer its schema (`shopgen.inference.infer_schema`); where
   `shopgen.inference.infer_schema` exists, the columns whose kind it doubts (name and reason);
2. check the rows against the schema and hold out 20 % of them (seed 0);
3. fit `CatalogSynthesizer` (preset `fast`, `--tabular`, seed 0) on the other 80 %;
4. sample min(rows, `--rows`) rows (seed 1), validate them against the schema (Great Expectations);
5. score them with `shopgen.evaluation.evaluate` against the training part and the hold-out.

Each catalog runs in its own process (this script with `--one CATALOG`), so one that crashes or raises is
recorded as an error and the others still run; progress goes to stderr as each step ends. The point is
the "done when" checklist per catalog: names copied <= 1 %, the share of prices on the catalog's price
grid within 0.05 of the real hold-out's, quality >= the real hold-out's - 0.03, utility >= 0.8, and no more
exact row copies than the real hold-out has.

Writes benchmarks/results/catalogs.{json,md} (numbers, column names and rule strings only, never catalog
text); the previous pair moves to benchmarks/results/history/catalogs_<its date>.{json,md} first. A run of
some catalogs keeps the saved results of the others.

    python benchmarks/catalogs.py                                   # every catalog, 5,000 sampled rows at most
    python benchmarks/catalogs.py --quick                           # 5 epochs, 20 s of text, 300 rows: a smoke run
    python benchmarks/catalogs.py --catalogs dmart sample_data --tabular tvae
    python benchmarks/catalogs.py --markdown-only                   # rewrite catalogs.md from catalogs.json
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import math
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SAMPLE = ROOT / "sample_data" / "products.csv"
RESULTS = ROOT / "benchmarks" / "results"
NAME = "catalogs"
HOLDOUT = 0.2
SEED = 0
KIND_ORDER = ("text", "categorical", "numeric", "integer", "id")

# the "done when" criteria
MAX_NAME_COPIES = 0.01
MAX_GRID_GAP = 0.05
QUALITY_SLACK = 0.03
MIN_UTILITY = 0.8

HEADLINE = ["quality", "quality_real", "rule_violations", "rule_violations_real", "invalid_rows", "invalid_rows_real",
            "dcr_share", "exact_copies", "exact_copies_real", "utility", "utility_synthetic", "utility_real"]


# ---- the catalogs ---------------------------------------------------------------------------------
def available() -> dict[str, Path]:
    """name -> products file: every ../shared/data/<name>/products.csv, and sample_data."""
    found = {p.parent.name: p for p in sorted(DATA.glob("*/products.csv"))} if DATA.is_dir() else {}
    if SAMPLE.is_file():
        found["sample_data"] = SAMPLE
    return found


# ---- one catalog, in its own process ----------------------------------------------------------------
def _progress(catalog: str, step: str, seconds: float) -> None:
    print(f"[catalogs] {catalog:<18} {step:<12} {seconds:8.1f} s", file=sys.stderr, flush=True)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _doubtful(df, catalog: str) -> dict:
    """What `shopgen.inference.infer_schema` doubts, where that module exists (it may not yet)."""
    try:
        from shopgen.inference import infer_schema
    except (ImportError, AttributeError) as exc:
        return {"available": False, "why": _one_line(exc)}
    t0 = time.perf_counter()
    try:
        decisions = list(infer_schema(df, name=catalog).decisions)
        doubtful = [{"column": str(d.column), "kind": str(d.kind), "reason": str(d.reason)}
                    for d in decisions if getattr(d, "doubtful", False)]
    except AttributeError as exc:
        return {"available": False, "why": _one_line(exc)}
    except Exception as exc:  # recorded, not fatal: the benchmark's schema is infer_schema's
        return {"available": True, "error": _one_line(exc)}
    return {"available": True, "seconds": round(time.perf_counter() - t0, 2), "decisions": len(decisions),
            "doubtful": doubtful}


def _validation_summary(result) -> str:
    """`ValidationResult.summary()` without its example values (generated rows may repeat catalog text)."""
    return re.sub(r", e\.g\. .*\)$", ")", result.summary())


def run_one(catalog: str, path: Path, args: argparse.Namespace, out: dict) -> dict:
    """Every step for one catalog; fills `out` as it goes, so a failure keeps what came before it."""
    warnings.filterwarnings("ignore")
    import logging

    for lib in ("sdv", "rdt", "copulas", "ctgan", "SingleTableSynthesizer", "great_expectations"):
        logging.getLogger(lib).setLevel(logging.ERROR)
    import torch

    from shopgen.evaluation.report import evaluate, split_holdout
    from shopgen.inference import infer_schema
    from shopgen.sources import read_catalog
    from shopgen.synthesizer import CatalogSynthesizer
    from shopgen.validation import validate

    out["torch_threads"] = torch.get_num_threads()
    seconds = out.setdefault("seconds", {})

    def done(step: str, t0: float) -> None:
        seconds[step] = round(time.perf_counter() - t0, 2)
        _progress(catalog, step, seconds[step])

    out["step"] = "read"
    t0 = time.perf_counter()
    df = read_catalog(path)
    done("read", t0)
    out["step"] = "infer"
    t0 = time.perf_counter()
    schema = infer_schema(df, name=catalog).schema
    done("infer", t0)
    out["schema"] = {
        "columns": len(schema.columns),
        "kinds": {c.name: c.type for c in schema.columns},
        "rules": [str(r) for r in schema.rules],
        "derived": {c.name: str(getattr(c, "derived", None)) for c in schema.columns if getattr(c, "derived", None)},
        "primary_key": schema.primary_key,
    }
    out["step"] = "inference"
    t0 = time.perf_counter()
    out["inference"] = _doubtful(df, catalog)
    done("inference", t0)

    out["step"] = "split"
    t0 = time.perf_counter()
    frame = schema.check_frame(df, source=catalog)
    train, hold = split_holdout(frame, HOLDOUT, SEED)
    done("split", t0)
    n = min(len(frame), args.rows)
    out["rows"] = {"catalog": len(df), "checked": len(frame), "train": len(train), "holdout": len(hold), "asked": n}

    out["step"] = "fit"
    extra = {}
    if args.epochs is not None:
        extra["epochs"] = args.epochs
    if args.text_seconds is not None:
        extra["max_train_minutes"] = args.text_seconds / 60
    t0 = time.perf_counter()
    synth = CatalogSynthesizer(schema, tabular=args.tabular, preset="fast", seed=SEED, show_progress=False,
                               **extra).fit(train)
    done("fit", t0)
    out["fit_seconds"] = getattr(synth, "fit_seconds_", None)
    out["tabular_epochs"] = getattr(getattr(synth, "tabular_model_", None), "epochs_", None)
    out["tabular_kind"] = getattr(getattr(synth, "tabular_model_", None), "kind_", args.tabular)
    out["tabular_selection"] = getattr(getattr(synth, "tabular_model_", None), "selection_", None) or None
    text_stats = getattr(getattr(synth, "text_model_", None), "stats_", None)
    out["text_epochs"] = getattr(text_stats, "epochs", None)

    out["step"] = "sample"
    t0 = time.perf_counter()
    synthetic, stats = synth.sample(n, seed=1)
    done("sample", t0)
    out["rows"]["synthetic"] = len(synthetic)
    out["sample_stats"] = stats.to_dict()

    out["step"] = "validate"
    t0 = time.perf_counter()
    result = validate(synthetic, schema)
    done("validate", t0)
    out["validation"] = {"success": bool(result.success), "summary": _validation_summary(result),
                         "failures": dict(result.failures)}

    out["step"] = "evaluate"
    t0 = time.perf_counter()
    report = evaluate(train, synthetic, schema, holdout=hold, seed=SEED)
    done("evaluate", t0)
    out["scores"] = dict(report.scores)
    out["utility_target"] = report.meta.get("utility_target")
    out["utility_metric"] = report.meta.get("utility_metric")
    out["evaluate_seconds"] = report.meta.get("seconds")
    out.pop("step")
    return out


def child_main(catalog: str, result_path: Path, args: argparse.Namespace) -> int:
    """`--one CATALOG`: run it, write its result (or its error) as JSON to `result_path`."""
    paths = available()
    out: dict = {"catalog": catalog}
    start = time.perf_counter()
    status = 0
    try:
        if catalog not in paths:
            raise FileNotFoundError(f"no catalog {catalog!r}; have {', '.join(paths) or 'none'}")
        out["path"] = str(paths[catalog].relative_to(ROOT.parent))
        run_one(catalog, paths[catalog], args, out)
    except BaseException as exc:  # recorded as this catalog's error; the parent goes on with the others
        traceback.print_exc(file=sys.stderr)
        out["error"] = _one_line(exc)
        out["failed_step"] = out.pop("step", None)
        status = 1
    out["seconds_total"] = round(time.perf_counter() - start, 1)
    result_path.write_text(json.dumps(out, default=_plain))
    try:  # CTGAN's joblib workers idle for 300 s before they exit; end them with the process
        from joblib.externals.loky import reusable_executor

        if reusable_executor._executor is not None:
            reusable_executor._executor.shutdown(wait=True, kill_workers=True)
    except Exception:
        pass
    return status


def in_subprocess(catalog: str, args: argparse.Namespace) -> dict:
    """Run one catalog as `this script --one CATALOG`; a crash, a raise or a timeout comes back as an error."""
    with tempfile.TemporaryDirectory(prefix="shopgen-catalogs-") as tmp:
        result_path = Path(tmp) / "result.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--one", catalog, "--result", str(result_path),
               "--tabular", args.tabular, "--rows", str(args.rows)]
        if args.epochs is not None:
            cmd += ["--epochs", str(args.epochs)]
        if args.text_seconds is not None:
            cmd += ["--text-seconds", str(args.text_seconds)]
        tail: collections.deque[str] = collections.deque(maxlen=40)
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True)

        def pump() -> None:  # the child's stderr, echoed and its tail kept for a crash's error line
            for line in proc.stderr:
                sys.stderr.write(line)
                sys.stderr.flush()
                if line.strip():
                    tail.append(line.rstrip())

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        timed_out = False
        try:
            proc.wait(timeout=args.timeout or None)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            if proc.poll() is None:  # timed out or interrupted: end the child's process group
                _end(proc)
        reader.join(5)
        result = None
        if result_path.exists():
            try:
                result = json.loads(result_path.read_text(), parse_constant=lambda _: None)
            except json.JSONDecodeError:
                result = None
    if result is None:
        if timed_out:
            why = f"timed out after {args.timeout:.0f} s"
        elif proc.returncode is not None and proc.returncode < 0:
            why = f"process killed by {signal.Signals(-proc.returncode).name}"
        else:
            why = f"process exited with code {proc.returncode}"
        last = next((line.strip() for line in reversed(tail) if not line.startswith("[catalogs]")), None)
        result = {"catalog": catalog, "error": f"{why}: {last}" if last else why}
    return result


def _end(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL, to the process group this script started for one catalog."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


# ---- numbers ----------------------------------------------------------------------------------------
def _plain(v):
    if hasattr(v, "tolist"):  # numpy scalars and arrays
        return v.tolist()
    if isinstance(v, (set, frozenset, tuple)):
        return list(v)
    return str(v)


def _num(v) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def pullouts(res: dict) -> dict:
    """The scores the table and the checklist use, from the flat `scores` (missing ones are None)."""
    scores = res.get("scores") or {}
    kinds = (res.get("schema") or {}).get("kinds") or {}
    texts = [c for c, k in kinds.items() if k == "text"]
    out = {k: _num(scores.get(k)) for k in HEADLINE}
    out["utility_target"] = res.get("utility_target")
    out["name_copies"] = {c: [_num(scores.get(f"copy_exact_{c}")), _num(scores.get(f"copy_exact_{c}_real"))]
                          for c in texts}
    out["rare_copies"] = {k[len("rare_copies_"):]: [_num(v), _num(scores.get(f"{k}_real"))]
                          for k, v in scores.items() if k.startswith("rare_copies_") and not k.endswith("_real")}
    grid = {c: f"grid_share_{c}" for c in kinds if f"grid_share_{c}" in scores}
    known = set(grid.values()) | {f"{k}_real" for k in grid.values()}
    for k in scores:  # a grid score on a name the schema does not list, kept all the same
        if k.startswith("grid_share_") and not k.endswith("_real") and k not in known:
            grid[k[len("grid_share_"):]] = k
    out["grid"] = {c: [_num(scores.get(k)), _num(scores.get(f"{k}_real"))] for c, k in grid.items()}
    out["name_columns"] = name_columns(texts)
    copies = [s for c, (s, _) in out["name_copies"].items() if s is not None and c in out["name_columns"]]
    out["max_name_copies"] = max(copies) if copies else None
    return out


def name_columns(texts: list[str]) -> list[str]:
    """The text columns that hold names or titles: those whose header says so, else the first text column.

    Descriptions are judged apart: stock texts that many products share ("India") are left to the
    guard's boilerplate rule, and the hold-out's own copy share is shown beside them.
    """
    from shopgen.inference import header_words

    named = [c for c in texts if header_words(c) & {"name", "title"}]
    return named or texts[:1]


def checklist(res: dict) -> list[tuple[str, str, str]]:
    """(criterion, PASS / FAIL / n/a, the numbers) for the "done when" criteria."""
    p = pullouts(res)
    rows = []

    def add(name: str, ok: bool | None, numbers: str) -> None:
        rows.append((name, "n/a" if ok is None else "PASS" if ok else "FAIL", numbers))

    copies = p["max_name_copies"]
    add(f"name copies ≤ {MAX_NAME_COPIES:.0%} (max copy_exact over the name/title columns: "
        f"{', '.join(p['name_columns']) or 'none'})",
        None if copies is None else copies <= MAX_NAME_COPIES,
        "no text column" if not p["name_copies"] else
        ", ".join(f"{c} {_pct(s)}" for c, (s, _) in p["name_copies"].items()))
    gaps = {c: (s, r) for c, (s, r) in p["grid"].items()}
    known = [abs(s - r) for s, r in gaps.values() if s is not None and r is not None]
    ok = None if not gaps or len(known) < len(gaps) else all(g <= MAX_GRID_GAP for g in known)
    add(f"|grid share − real| ≤ {MAX_GRID_GAP} for every grid column", ok,
        ", ".join(f"{c} {_f(s)} vs {_f(r)}" for c, (s, r) in gaps.items()) or "no grid score")
    q, qr = p["quality"], p["quality_real"]
    add(f"quality ≥ real − {QUALITY_SLACK}", None if q is None or qr is None else q >= qr - QUALITY_SLACK,
        f"{_f(q)} vs {_f(qr)}")
    u = p["utility"]
    add(f"utility ≥ {MIN_UTILITY}", None if u is None else u >= MIN_UTILITY, _f(u))
    e, er = p["exact_copies"], p["exact_copies_real"]
    add("exact copies ≤ real hold-out's", None if e is None or er is None else e <= er, f"{_pct(e)} vs {_pct(er)}")
    return rows


# ---- markdown ---------------------------------------------------------------------------------------
def _f(v, digits: int = 3) -> str:
    v = _num(v)
    return "n/a" if v is None else f"{v:.{digits}f}"


def _pct(v) -> str:
    v = _num(v)
    return "n/a" if v is None else f"{v:.1%}"


def _kinds(kinds: dict) -> str:
    counts = collections.Counter(kinds.values())
    order = [k for k in KIND_ORDER if counts[k]] + sorted(k for k in counts if k not in KIND_ORDER)
    return " · ".join(f"{k} {counts[k]}" for k in order) or "n/a"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(saved: list[dict], meta: dict) -> str:
    lines = [f"# Every catalog, untouched: schema inference to evaluation ({meta.get('date', 'n/a')}, "
             f"{meta.get('tabular', 'ctgan')}, preset fast{', quick' if meta.get('quick') else ''})", "",
             f"Each catalog read as it is, its schema inferred (`shopgen.inference.infer_schema`), {HOLDOUT:.0%} of the checked "
             f"rows held out (seed {SEED}), `CatalogSynthesizer` (preset fast, seed {SEED}) fitted on the rest, "
             "min(rows, --rows) rows sampled (seed 1), validated against the schema and scored by "
             "`shopgen.evaluation.evaluate` against the training part and the hold-out. Real = the hold-out's own "
             "score. Each catalog in its own process; times are wall seconds.", ""]
    cols = ["catalog", "rows (sampled)", "kinds", "rules", "derived", "quality (real)", "rule violations (real)",
            "name copies, max", "price grid (real)", "DCR share", "exact copies (real)", "utility", "done when"]
    lines += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for res in saved:
        schema = res.get("schema") or {}
        if "error" in res and "scores" not in res:
            step = f" (at {res['failed_step']})" if res.get("failed_step") else ""
            lines.append(f"| {res['catalog']} | error{step}: {_cell(res['error'])} |" + " |" * (len(cols) - 2))
            continue
        p = pullouts(res)
        rows = res.get("rows") or {}
        target = p["utility_target"]
        grid = p["grid"].get(target) if target else None
        checks = checklist(res)
        passed = sum(s == "PASS" for _, s, _ in checks)
        known = sum(s != "n/a" for _, s, _ in checks)
        lines.append("| " + " | ".join([
            res["catalog"], f"{rows.get('catalog', 'n/a')} ({rows.get('synthetic', 'n/a')})",
            _kinds(schema.get("kinds") or {}), str(len(schema.get("rules") or [])),
            str(len(schema.get("derived") or {})),
            f"{_f(p['quality'])} ({_f(p['quality_real'])})",
            f"{_pct(p['rule_violations'])} ({_pct(p['rule_violations_real'])})",
            _pct(p["max_name_copies"]) if p["name_copies"] else "no text",
            f"{target}: {_f(grid[0])} ({_f(grid[1])})" if grid else "n/a",
            _f(p["dcr_share"]), f"{_pct(p['exact_copies'])} ({_pct(p['exact_copies_real'])})", _f(p["utility"]),
            f"{passed}/{known} pass" + (f", {len(checks) - known} n/a" if known < len(checks) else "")]) + " |")
    lines += ["", "Name copies: generated texts equal to a training text (copy_exact, the copy guard on), the "
              "largest over the name/title columns (headers with name or title, else the first text column). Price grid: share of the main price column (the utility target) on "
              "the catalog's price grid. DCR share: synthetic rows nearer to a training row than the hold-out's "
              "median (0.5 ideal). Utility: hold-out score of a model of the utility target trained on synthetic "
              "rows over the same model trained on real rows.", ""]

    for res in saved:
        lines += _section(res)
    cpu = meta.get("cpu", "n/a")
    lines += ["---", "", f"CPU: {cpu}; {meta.get('cpu_count', 'n/a')} cores, {meta.get('torch_threads', 'n/a')} torch "
              f"threads; Python {meta.get('python', 'n/a')}. Catalogs kept from earlier runs state their own run below "
              "their timings.", "",
              f"File: benchmarks/results/{NAME}.md, written by benchmarks/{NAME}.py (every number, each catalog's run "
              f"settings: {NAME}.json; earlier files: results/history/). Re-run: `{meta.get('command', '')}` "
              f"(`--catalogs NAME ...` re-runs some and keeps the others; `--quick` for a smoke run; `--help`)."]
    return "\n".join(lines) + "\n"


def _section(res: dict) -> list[str]:
    cat = res["catalog"]
    schema = res.get("schema") or {}
    rows = res.get("rows") or {}
    lines = [f"## {cat}", ""]
    if "error" in res:
        lines += [f"**Error** at step `{res.get('failed_step') or 'n/a'}`: {res['error']}", ""]
    if rows:
        lines += [f"{rows.get('catalog', 'n/a')} rows read, {rows.get('checked', 'n/a')} checked, "
                  f"{rows.get('train', 'n/a')} training, {rows.get('holdout', 'n/a')} hold-out, "
                  f"{rows.get('asked', 'n/a')} asked for, {rows.get('synthetic', 'n/a')} sampled. Primary key: "
                  f"{schema.get('primary_key') or 'none'}. Utility target: {res.get('utility_target') or 'none'} "
                  f"({res.get('utility_metric') or 'n/a'}).", ""]
    inference = res.get("inference") or {}
    doubts = {d["column"]: d for d in inference.get("doubtful") or []}
    kinds = schema.get("kinds") or {}
    derived = schema.get("derived") or {}
    if kinds:
        lines += ["| column | kind | derived | doubtful |", "|---|---|---|---|"]
        for col, kind in kinds.items():
            d = doubts.get(col)
            doubt = _cell(f"{d['kind']}: {d['reason']}") if d else ""
            lines.append(f"| {_cell(col)} | {kind} | {_cell(derived.get(col, ''))} | {doubt} |")
        lines.append("")
    if schema:
        rules = schema.get("rules") or []
        lines += ["Rules: " + ("; ".join(f"`{r}`" for r in rules) if rules else "none") + ". Derived columns: "
                  + (", ".join(derived) if derived else "none") + ".", ""]
    if inference and not inference.get("available"):
        lines += [f"Doubtful decisions: n/a (shopgen.inference not available: {inference.get('why', 'n/a')}).", ""]
    elif inference.get("error"):
        lines += [f"Doubtful decisions: n/a (infer_schema failed: {inference['error']}).", ""]
    elif inference:
        lines += [f"Doubtful decisions: {len(doubts)} of {inference.get('decisions', 'n/a')}"
                  + (": " + "; ".join(f"{c} ({d['kind']}): {d['reason']}" for c, d in doubts.items()) if doubts else "")
                  + ".", ""]
    if "scores" not in res:
        return lines + _timings(res)
    p = pullouts(res)
    if p["grid"]:
        lines += ["| grid column | share on grid | real | gap |", "|---|---|---|---|"]
        for c, (s, r) in p["grid"].items():
            gap = abs(s - r) if s is not None and r is not None else None
            lines.append(f"| {_cell(c)} | {_f(s)} | {_f(r)} | {_f(gap)} |")
        lines.append("")
    else:
        lines += ["Grid shares: n/a (no grid_share score).", ""]
    if p["name_copies"]:
        lines += ["Name copies (copy_exact, synthetic vs real hold-out): "
                  + ", ".join(f"{c} {_pct(s)} vs {_pct(r)}" for c, (s, r) in p["name_copies"].items())
                  + (". Rare copies: " + ", ".join(f"{c} {_f(s)} vs {_f(r)}" for c, (s, r) in p["rare_copies"].items())
                     if p["rare_copies"] else "") + ".", ""]
    val = res.get("validation") or {}
    stats = res.get("sample_stats") or {}
    lines += [f"Validation: {'passed' if val.get('success') else 'FAILED'} ({val.get('summary', 'n/a')}). "
              f"Sampling: {stats.get('rounds', 'n/a')} rounds, {stats.get('drawn', 'n/a')} rows drawn, "
              f"{stats.get('invalid', 'n/a')} invalid redrawn, {stats.get('copies_redrawn', 'n/a')} copies redrawn, "
              f"{stats.get('copies_dropped', 'n/a')} dropped. Quality {_f(p['quality'])} (real {_f(p['quality_real'])}), "
              f"rule violations {_pct(p['rule_violations'])} (real {_pct(p['rule_violations_real'])}), invalid rows "
              f"{_pct(p['invalid_rows'])}, DCR share {_f(p['dcr_share'])}, exact copies {_pct(p['exact_copies'])} "
              f"(real {_pct(p['exact_copies_real'])}), utility {_f(p['utility'])} (synthetic-trained "
              f"{_f(p['utility_synthetic'])}, real-trained {_f(p['utility_real'])}).", ""]
    lines += ["Done when:", ""]
    lines += [f"- **{status}** {name}: {numbers}" for name, status, numbers in checklist(res)]
    lines.append("")
    return lines + _timings(res)


def _timings(res: dict) -> list[str]:
    sec = res.get("seconds") or {}
    fit = res.get("fit_seconds") or {}
    run = res.get("run") or {}
    parts = [f"{k} {v:.1f} s" for k, v in sec.items() if _num(v) is not None]
    if fit:
        chosen = res.get("tabular_selection")
        picked = (f" ({res.get('tabular_kind')}, chosen by detection AUC: "
                  + ", ".join(f"{k} {v:.3f}" for k, v in chosen.items()) + ")") if chosen else ""
        parts.append(f"fit split: tabular {fit.get('tabular', 'n/a')} s{picked}, {res.get('tabular_epochs') or 'n/a'} epochs; "
                     f"text {fit.get('text', 'n/a')} s, {_f(res.get('text_epochs'), 2)} epochs")
    out = [f"Timings: {', '.join(parts) or 'n/a'}; {_f(res.get('seconds_total'), 1)} s in all."]
    if run:
        out.append(f"Run {run.get('date', 'n/a')}, {run.get('tabular', 'n/a')}, rows cap {run.get('rows', 'n/a')}, "
                   f"epochs {run.get('epochs') or 'preset'}, text seconds {run.get('text_seconds') or 'preset'}, "
                   f"{res.get('torch_threads', 'n/a')} torch threads, load average {run.get('load', 'n/a')}.")
    return [" ".join(out), ""]


# ---- files ------------------------------------------------------------------------------------------
def cpu_model() -> str:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")),
                platform.processor() or "unknown")


def archive(out: Path) -> list[Path]:
    """Move the previous catalogs.json/.md to out/history/catalogs_<their date>[_N].{json,md}."""
    old = [out / f"{NAME}{ext}" for ext in (".json", ".md") if (out / f"{NAME}{ext}").exists()]
    if not old:
        return []
    date = None
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        date = str(json.loads((out / f"{NAME}.json").read_text())["meta"]["date"])[:10]
    if not date or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
        date = time.strftime("%Y-%m-%d", time.localtime(max(p.stat().st_mtime for p in old)))
    history = out / "history"
    history.mkdir(parents=True, exist_ok=True)
    stem, i = f"{NAME}_{date}", 1
    while any((history / f"{stem}{p.suffix}").exists() for p in old):
        i += 1
        stem = f"{NAME}_{date}_{i}"
    moved = []
    for p in old:
        moved.append(Path(shutil.move(str(p), str(history / f"{stem}{p.suffix}"))))
    return moved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalogs", nargs="+", default=None,
                        help="catalog names: folders of ../shared/data with a products.csv, or sample_data (default: all)")
    parser.add_argument("--tabular", default="ctgan", help="CatalogSynthesizer's tabular model (default ctgan)")
    parser.add_argument("--rows", type=int, default=None,
                        help="rows to sample at most, min(catalog rows, this) (default 5000; 300 with --quick)")
    parser.add_argument("--epochs", type=int, default=None, help="tabular epochs (default: the preset's; 5 with --quick)")
    parser.add_argument("--text-seconds", type=float, default=None,
                        help="text training budget in seconds (default: the preset's; 20 with --quick)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 5 epochs, 20 s of text, 300 rows")
    parser.add_argument("--timeout", type=float, default=3 * 3600, help="seconds per catalog before its process is "
                        "ended and recorded as an error (default 10800; 0: no limit)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for catalogs.json and catalogs.md")
    parser.add_argument("--markdown-only", action="store_true", help="rewrite catalogs.md from catalogs.json, run nothing")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: run one catalog in this process
    parser.add_argument("--result", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.epochs = 5 if args.epochs is None else args.epochs
        args.text_seconds = 20.0 if args.text_seconds is None else args.text_seconds
    if args.rows is None:
        args.rows = 300 if args.quick else 5000
    if args.rows < 1:
        parser.error(f"--rows {args.rows} is below 1")
    if args.one is not None:
        if args.result is None:
            parser.error("--one needs --result")
        sys.exit(child_main(args.one, args.result, args))

    path = args.out / f"{NAME}.json"
    previous = json.loads(path.read_text(), parse_constant=lambda _: None) if path.exists() else {}
    saved = previous.get("results", [])
    if args.markdown_only:
        if not saved:
            raise SystemExit(f"no results in {path}")
        (args.out / f"{NAME}.md").write_text(markdown(saved, previous.get("meta", {})))
        return
    paths = available()
    catalogs = args.catalogs or list(paths)
    unknown = [c for c in catalogs if c not in paths]
    if unknown:
        parser.error(f"unknown catalog(s) {', '.join(unknown)}; have {', '.join(paths) or 'none'}")

    import torch

    settings = {"tabular": args.tabular, "rows": args.rows, "epochs": args.epochs, "text_seconds": args.text_seconds,
                "quick": args.quick, "timeout": args.timeout, "catalogs": catalogs}
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpu": cpu_model(), "cpu_count": os.cpu_count(),
            "machine": platform.machine(), "python": platform.python_version(), "torch_threads": torch.get_num_threads(),
            "args": settings,
            "command": ".venv/bin/python benchmarks/catalogs.py" + ("" if len(sys.argv) < 2 else " " + shlex.join(sys.argv[1:]))}
    args.out.mkdir(parents=True, exist_ok=True)
    archived = False
    start = time.perf_counter()
    for catalog in catalogs:
        load = os.getloadavg()[0]
        print(f"[catalogs] {catalog}: start", file=sys.stderr, flush=True)
        result = in_subprocess(catalog, args)
        result["run"] = {"date": meta["date"], "cpu": meta["cpu"], **settings, "load": round(load, 2)}
        result["run"].pop("catalogs")
        clean = json.loads(json.dumps(result, default=_plain), parse_constant=lambda _: None)  # NaN -> null
        saved = sorted([r for r in saved if r.get("catalog") != catalog] + [clean], key=lambda r: r["catalog"])
        if not archived:
            for p in archive(args.out):
                print(f"[catalogs] previous results moved to {p.relative_to(ROOT) if p.is_relative_to(ROOT) else p}",
                      file=sys.stderr, flush=True)
            archived = True
        meta["seconds"] = round(time.perf_counter() - start, 1)
        path.write_text(json.dumps({"meta": meta, "results": saved}, indent=2) + "\n")  # after each catalog
        (args.out / f"{NAME}.md").write_text(markdown(saved, meta))
        status = f"error: {clean['error']}" if "error" in clean else f"done in {clean.get('seconds_total', 'n/a')} s"
        print(f"[catalogs] {catalog}: {status}", file=sys.stderr, flush=True)
    print((args.out / f"{NAME}.md").read_text())


if __name__ == "__main__":
    main()
