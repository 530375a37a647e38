"""End-to-end cost and checks on each real catalog in ../shared/data, through the CLI a user runs.

For each catalog: `schema infer` -> `fit --preset P` -> `sample -n N --seed 1` twice -> `validate`.
Records wall times, rows, whether every input column came out, validation, reproducibility and the
share of generated names that are verbatim training names. Writes numbers only (never catalog text)
to benchmarks/results/end_to_end.{json,md}.

    python benchmarks/end_to_end.py [--preset fast] [--tabular ctgan] [--rows 500]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"


def run(*args: object) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "shopgen.cli", *map(str, args)], capture_output=True, text=True)
    return round(time.perf_counter() - t0, 1), proc


def bench(catalog: Path, preset: str, tabular: str, rows: int, work: Path) -> dict:
    from shopgen.schema import CatalogSchema
    from shopgen.text.guard import CopyGuard

    schema = work / "schema.yaml"
    out: dict = {"catalog": catalog.parent.name}
    out["infer_s"], p = run("schema", "infer", catalog, "-o", schema)
    assert p.returncode == 0, p.stderr
    out["fit_s"], p = run("fit", catalog, "--schema", schema, "--out", work / "model", "--preset", preset,
                          "--tabular", tabular, "--quiet")
    assert p.returncode == 0, p.stderr
    manifest = json.loads((work / "model" / "manifest.json").read_text())
    out["fit_tabular_s"], out["fit_text_s"] = manifest["fit_seconds"]["tabular"], manifest["fit_seconds"]["text"]
    out["tabular_epochs"] = manifest["tabular_epochs"]
    out["text_val_loss"] = manifest["text_training"]["val_loss"]
    out["text_steps"] = manifest["text_training"]["steps"]
    out["sample_s"], p = run("sample", work / "model", "-n", rows, "-o", work / "a.csv", "--seed", 1, "--quiet")
    assert p.returncode == 0, p.stderr
    out["sample_log"] = p.stdout.strip()
    _, p = run("sample", work / "model", "-n", rows, "-o", work / "b.csv", "--seed", 1, "--quiet")
    out["same_seed_identical"] = (work / "a.csv").read_bytes() == (work / "b.csv").read_bytes()
    _, p = run("validate", work / "a.csv", "--schema", schema)
    out["validate_exit"] = p.returncode
    real, synth = pd.read_csv(catalog), pd.read_csv(work / "a.csv")
    out["rows"] = len(synth)
    out["all_columns"] = list(synth.columns) == list(real.columns)
    first_text = CatalogSchema.from_yaml(schema).text_columns[0].name
    copies = CopyGuard.from_texts(real[first_text]).copies(synth[first_text].dropna().astype(str).tolist())
    out["name_column"] = first_text
    out["copied_name_share"] = round(float(sum(copies) / max(len(copies), 1)), 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--tabular", default="ctgan")
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--keep", type=Path, help="keep each catalog's schema, bundle and samples under this folder")
    args = parser.parse_args()
    catalogs = sorted(DATA.glob("*/products.csv"))
    if not catalogs:
        sys.exit(f"no catalogs under {DATA}")
    results = []
    for catalog in catalogs:
        with tempfile.TemporaryDirectory() as tmp:
            work = args.keep / catalog.parent.name if args.keep else Path(tmp)
            work.mkdir(parents=True, exist_ok=True)
            results.append(bench(catalog, args.preset, args.tabular, args.rows, work))
            print(json.dumps(results[-1]), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {"preset": args.preset, "tabular": args.tabular, "rows": args.rows, "date": time.strftime("%Y-%m-%d")}
    (RESULTS / "end_to_end.json").write_text(json.dumps({"settings": meta, "results": results}, indent=2))
    cols = ["catalog", "fit_s", "fit_tabular_s", "tabular_epochs", "fit_text_s", "text_val_loss", "sample_s",
            "rows", "all_columns", "validate_exit", "same_seed_identical", "copied_name_share"]
    lines = [f"# End to end on real catalogs ({meta['date']}, preset {args.preset}, {args.tabular}, "
             f"{args.rows} rows, 2 CPU cores)", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in results]
    lines += ["", "Times are wall seconds of the CLI commands, process start and imports included.",
              "Re-run: `.venv/bin/python benchmarks/end_to_end.py --preset fast`."]
    (RESULTS / "end_to_end.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
