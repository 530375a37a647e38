"""What each text preset buys: train time, validation loss, faithfulness and copying, on real catalogs.

For each catalog and preset: fit the text model on 90 % of the catalog, then write the text of the
10 % hold-out rows from their real conditions, so the text is judged apart from the tabular model.
Scores (shopgen.evaluation.text) sit beside the same scores for the real hold-out text.
Writes benchmarks/results/text_presets.{json,md}.

    python benchmarks/text_presets.py --presets fast small --catalogs dmart wish_summer_2020
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pandas as pd  # noqa: E402

from shopgen.evaluation.text import text_metrics  # noqa: E402
from shopgen.inference import infer_schema
from shopgen.presets import get_preset  # noqa: E402
from shopgen.text.estimator import TextModel  # noqa: E402
from shopgen.text.generate.sampler import SamplingConfig  # noqa: E402
from shopgen.text.guard import CopyGuard  # noqa: E402
from shopgen.text.machine import isa_limits  # noqa: E402
from shopgen.text.precision import PRECISIONS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def run(catalog: str, preset: str, save: Path | None = None, load: Path | None = None,
        precision: str = "fp32", max_seconds: float | None = None) -> dict:
    raw = pd.read_csv(ROOT.parent / "shared" / "data" / catalog / "products.csv")
    schema = infer_schema(raw, name=catalog).schema
    df = schema.check_frame(raw)
    train = df.sample(frac=0.9, random_state=0)
    hold = df.drop(train.index)
    p = get_preset(preset).text
    t0 = time.perf_counter()
    if load is not None:  # a model this script saved before: score it under today's sampling defaults
        model = TextModel.from_pretrained(load / f"{catalog}_{preset}", p)
        model.sampling = SamplingConfig(precision="auto")
        fit_s = model.stats_.seconds
    else:
        model = TextModel(p, precision=precision, max_seconds=max_seconds).fit(schema, train, show_progress=False)
        fit_s = time.perf_counter() - t0
    if save is not None:  # e.g. for benchmarks/text_generation.py --text-model
        model.save_pretrained(save / f"{catalog}_{preset}")
    t0 = time.perf_counter()
    texts, copied, redrawn = model.generate(hold, seed=0, show_progress=False)
    gen_s = time.perf_counter() - t0
    synthetic = hold.copy()
    for col in texts.columns:
        synthetic[col] = texts[col].to_numpy()
    synthetic = synthetic[~copied.to_numpy()]
    first = schema.text_columns[0].name
    unguarded, _, _ = model.generate(hold, seed=0, allow_copies=True, show_progress=False)
    scores = text_metrics(train, hold, synthetic, schema)
    stats = model.stats_
    return {
        "catalog": catalog, "preset": preset,
        "params": f"{p.n_layer}x{p.n_embd}, vocab {p.vocab_size}, context {p.block_size}",
        "train_s": round(fit_s), "steps": stats.steps, "epochs": stats.epochs, "stopped_by": stats.stopped_by,
        "precision": stats.precision, "budget_s": stats.budget_s or p.max_seconds,
        "val_loss": stats.val_loss, "generate_s": round(gen_s, 1), "rows": len(hold),
        "copies_redrawn": redrawn, "guidance": model.sampling.guidance, "lead_repeats": p.lead_repeats,
        "name_copy_rate_unguarded": round(float(pd.Series(CopyGuard.from_texts(train[first]).copies(unguarded[first])).mean()), 4),
        **scores,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["fast", "small"])
    parser.add_argument("--catalogs", nargs="+", default=["dmart", "wish_summer_2020"])
    parser.add_argument("--save", type=Path, help="keep each fitted text model under this folder")
    parser.add_argument("--load", type=Path, help="score the models a --save run kept there instead of fitting")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS, help="the GPT's training precision")
    parser.add_argument("--max-seconds", type=float,
                        help="the GPT's training budget instead of the preset's: e.g. the share of 20 minutes "
                             "a slower host's matmuls would give, to predict its result here")
    parser.add_argument("--name", default="text_presets",
                        help="results file stem under benchmarks/results/ (keep one per machine class)")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{args.name}.json"
    results = json.loads(path.read_text()) if path.exists() else []  # runs for other catalogs are kept
    for catalog in args.catalogs:
        for preset in args.presets:
            row = run(catalog, preset, args.save, args.load, args.precision, args.max_seconds)
            print(json.dumps(row), flush=True)
            results = [r for r in results if (r["catalog"], r["preset"]) != (catalog, preset)] + [row]
            path.write_text(json.dumps(results, indent=2))
    lines = [f"# Text presets on real catalogs ({time.strftime('%Y-%m-%d')}, 2 CPU cores)", "",
             "Text written for held-out real rows (10 %) by a model fitted on the other 90 %. `real` = the same "
             "score for the real hold-out text. Copy rates are with the guard on (the default); "
             "`unguarded` is the name copy rate with `--allow-copies`.", "",
             "| catalog | preset | model | train s | epochs | val loss | lead passes | guidance | category consistency (real) | "
             "price coherence (real) | name distinct-2 (real) | name copies (unguarded) | redrawn |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        cat_key = next((k for k in r if k.startswith("consistency_") and "ategor" in k and not k.endswith("_real")), None)
        name = next(k for k in r if k.startswith("distinct2_") and not k.endswith("_real"))
        copy = next(k for k in r if k.startswith("copy_exact_") and not k.endswith("_real"))
        consistency = f"{r[cat_key]:.3f} ({r[cat_key + '_real']:.3f})" if cat_key else "n/a (no category column)"
        lines.append(
            f"| {r['catalog']} | {r['preset']} | {r['params']} | {r['train_s']} | {r['epochs']} | {r['val_loss']} | "
            f"{r.get('lead_repeats', 0)} | {r.get('guidance', 0.0)} | {consistency} | {r.get('price_coherence', float('nan')):.3f} ({r.get('price_coherence_real', float('nan')):.3f}) | "
            f"{r[name]:.3f} ({r[name + '_real']:.3f}) | {r[copy]:.3f} ({r['name_copy_rate_unguarded']:.3f}) | {r['copies_redrawn']} |"
        )
    budgets = sorted({r["budget_s"] for r in results if "budget_s" in r})
    caps = isa_limits(" ")
    lines += ["", "Epochs count passes over the rows; with lead passes, an epoch also passes `lead passes` times "
              "over each row cut after its name (`small`: and the description's first 32 tokens).",
              "", f"Training budgets (s): {', '.join(f'{b:g}' for b in budgets) or 'the presets'}.",
              *(["", f"torch's kernels were capped by `{caps}`: a wider CPU standing in for an AVX2 one "
                  "(README, Presets)."] if caps else []),
              "", f"All scores, per column: {args.name}.json. Re-run: "
              f"`{caps + ' ' if caps else ''}.venv/bin/python benchmarks/text_presets.py --presets {' '.join(args.presets)} "
              f"--catalogs {' '.join(args.catalogs)} --precision {args.precision}"
              f"{f' --max-seconds {args.max_seconds:g}' if args.max_seconds else ''} --name {args.name}`."]
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
