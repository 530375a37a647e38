"""Cost of conditional sampling on a rare category, against unconditional sampling, in one run.

On one fitted bundle (dmart by default): 1,000 rows conditioned on the category nearest 1 % of the
catalog vs 1,000 unconditional rows (tabular + text + validation, end to end), whether every row meets
the condition, and whether the text agrees with it (category consistency of a real-text classifier).
For contrast, SDV's own `sample_from_conditions` on the same CTGAN (reject sampling).
Writes benchmarks/results/conditional.{json,md}.

    python benchmarks/conditional.py [--bundle models/dmart] [--catalog dmart] [--rows 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pandas as pd  # noqa: E402

from shopgen.evaluation.text import consistency  # noqa: E402
from shopgen.inference import infer_schema
from shopgen.synthesizer import CatalogSynthesizer  # noqa: E402
from shopgen.text.machine import isa_limits  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def sdv_reject_sampling(synth: CatalogSynthesizer, column: str, value: str, rows: int) -> dict:
    from sdv.sampling import Condition

    t0 = time.perf_counter()
    try:
        out = synth.tabular_model_.synth_.sample_from_conditions([Condition({column: value}, num_rows=rows)])
        got, error = len(next(iter(out.values()))), ""
    except Exception as exc:  # SDV raises when reject sampling finds nothing
        got, error = 0, str(exc).splitlines()[0][:160]
    return {"rows": got, "seconds": round(time.perf_counter() - t0, 1), "error": error}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", default="dmart")
    parser.add_argument("--bundle", type=Path, help="a fitted bundle of the catalog (default: fit `fast` now)")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--text-model", type=Path,
                        help="write text with this TextModel.save_pretrained directory (e.g. the `small` model "
                             "that benchmarks/text_presets.py --save keeps) instead of the bundle's")
    parser.add_argument("--name", default="conditional",
                        help="results file stem under benchmarks/results/ (keep one per machine class)")
    args = parser.parse_args()
    raw = pd.read_csv(ROOT.parent / "shared" / "data" / args.catalog / "products.csv")
    schema = infer_schema(raw, name=args.catalog).schema
    if args.bundle:
        synth = CatalogSynthesizer.load(args.bundle, show_progress=False)
        schema = synth.schema
    else:
        synth = CatalogSynthesizer(schema, preset="fast", show_progress=False).fit(raw)
        synth.save(Path(tempfile.mkdtemp()) / "model")
    if args.text_model:
        from shopgen.presets import get_preset
        from shopgen.text.estimator import TextModel

        synth.text_model_ = TextModel.from_pretrained(args.text_model, get_preset("small").text)
    column = next(c for c in schema.conditions if schema.column(c).type == "categorical" and "ategor" in c)
    shares = raw[column].value_counts(normalize=True)
    value = (shares - 0.01).abs().idxmin()

    t0 = time.perf_counter()
    plain = synth.sample(args.rows, seed=1).catalog
    plain_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    conditioned = synth.sample(args.rows, seed=1, conditions={column: value}).catalog
    cond_s = time.perf_counter() - t0
    acceptance = synth.tabular_model_.last_acceptance_
    real = schema.check_frame(raw)
    train = real.sample(frac=0.8, random_state=0)
    held = real.drop(train.index)
    scores = consistency(train, held[held[column] == value], conditioned, schema)
    pairs = {  # does each conditioned row's brand (say) belong to its aisle, as in the real catalog?
        f"{child} within {parent}": round(float(pd.Series(list(zip(conditioned[parent], conditioned[child]))).isin(
            set(zip(real[parent], real[child]))).mean()), 3)
        for child, (parent, _) in synth.tabular_model_.coherent_.items()
    }

    result = {
        "catalog": args.catalog, "condition": {column: value}, "training_share": round(float(shares[value]), 4),
        "rows": args.rows, "unconditional_s": round(plain_s, 1), "conditional_s": round(cond_s, 1),
        "ratio": round(cond_s / plain_s, 2), "all_rows_meet_condition": bool((conditioned[column] == value).all()),
        "tabular_acceptance": acceptance, "text_consistency": scores.get(f"consistency_{column}"),
        "text_consistency_real": scores.get(f"consistency_{column}_real"),
        "plain_rows_with_value": int((plain[column] == value).sum()), "pairs_seen_in_real_data": pairs,
        "sdv_reject_sampling": sdv_reject_sampling(synth, column, value, args.rows),
    }
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=2))
    sdv = result["sdv_reject_sampling"]
    text_from = f"`{args.text_model}`" if args.text_model else "the bundle's"
    lines = [
        f"# Conditional sampling on a rare category ({time.strftime('%Y-%m-%d')}, 2 CPU cores)", "",
        f"Catalog {args.catalog}, condition `{column}={value}` ({result['training_share']:.1%} of the catalog), "
        f"{args.rows} rows, tabular + text + validation end to end. Text model: {text_from}.", "",
        "| run | seconds | rows meeting the condition |", "|---|---|---|",
        f"| shopgen, unconditional | {result['unconditional_s']} | {result['plain_rows_with_value']} of {args.rows} |",
        f"| shopgen, `--where {column}={value}` | {result['conditional_s']} | {args.rows} of {args.rows} |",
        f"| SDV `sample_from_conditions` (reject sampling), tabular only | {sdv['seconds']} | {sdv['rows']} {sdv['error']} |",
        "", f"Cost ratio conditional / unconditional: **{result['ratio']}x**. Share of steered CTGAN draws that met "
        f"the condition: {acceptance:.1%}. Category consistency of the conditioned rows' text (a real-text "
        f"classifier predicting `{column}`): {result['text_consistency']} (held-out real rows of that category: "
        f"{result['text_consistency_real']}). Conditioned rows whose pair of columns occurs in the real catalog: "
        + ", ".join(f"{k} {v:.1%}" for k, v in pairs.items()) + ".",
    ]
    if isa_limits():
        lines += ["", f"torch's kernels were capped by `{isa_limits(' ')}`: a wider CPU standing in "
                  "for an AVX2 one (README, Presets)."]
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
