"""What the sampling settings do to one trained text model: consistency, diversity, copies, speed.

The model is trained once (`benchmarks/text_presets.py --save DIR` keeps it, fitted on 90 % of the
catalog with the same split); here it writes the text of the 10 % hold-out rows under each setting, and
each row of the table is scored against the real hold-out text, as text_presets.py does. This is how
the default `SamplingConfig` was chosen. Scores use the report's fast classifiers (naive Bayes on
clipped text, see shopgen.evaluation.text): for comparing settings, not for text_presets' absolute
numbers. Writes benchmarks/results/text_sampling.{json,md}.

    python benchmarks/text_sampling.py --text-model /tmp/models/dmart_small [--catalog dmart]
    python benchmarks/text_sampling.py --text-model DIR --settings '{}' '{"precision": "bf16"}' --name text_sampling_bf16
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

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SETTINGS = [  # changes to the default SamplingConfig
    {}, {"guidance": 0.0}, {"guided_fields": None}, {"guidance": 2.0}, {"temperature": 0.8}, {"top_k": 256},
    {"top_p": 0.95}, {"top_p": 0.7}, {"precision": "bf16"},
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text-model", type=Path, required=True)
    parser.add_argument("--catalog", default="dmart")
    parser.add_argument("--preset", default="small", help="the preset the model was trained with")
    parser.add_argument("--seeds", type=int, default=3, help="sampling seeds per setting: scores are their means "
                        "(one seed's category consistency moves by ~0.02 on 519 rows)")
    parser.add_argument("--settings", nargs="+", type=json.loads, default=SETTINGS,
                        help="changes to the default SamplingConfig, one JSON object each (default: the list above)")
    parser.add_argument("--name", default="text_sampling", help="results file stem under benchmarks/results/")
    args = parser.parse_args()
    raw = pd.read_csv(ROOT.parent / "shared" / "data" / args.catalog / "products.csv")
    schema = infer_schema(raw, name=args.catalog).schema
    df = schema.check_frame(raw)
    train = df.sample(frac=0.9, random_state=0)  # the split text_presets.py trains on
    hold = df.drop(train.index)
    model = TextModel.from_pretrained(args.text_model, get_preset(args.preset).text)
    category = next((c for c in schema.conditions if "ategor" in c), None)
    name = schema.text_columns[0].name
    rows = []
    for change in args.settings:
        cfg = SamplingConfig(**{"precision": "auto", **change})
        runs = []
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            texts, copied, redrawn = model.generate(hold, seed=seed, show_progress=False, sampling=cfg)
            seconds = time.perf_counter() - t0
            synthetic = hold.copy()
            for col in texts.columns:
                synthetic[col] = texts[col].to_numpy()
            scores = text_metrics(train, hold, synthetic[~copied.to_numpy()], schema, fast=True)
            runs.append({"seconds": seconds, "redrawn": redrawn, "dropped": int(copied.sum()), **scores})
        mean = {key: round(sum(r[key] for r in runs) / len(runs), 4) for key in runs[0]}
        row = {"temperature": cfg.temperature, "top_k": cfg.top_k, "top_p": cfg.top_p, "guidance": cfg.guidance,
               "guided_fields": cfg.guided_fields, "precision": cfg.precision, "seeds": args.seeds, **mean, "seconds": round(mean["seconds"], 1)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps({"catalog": args.catalog, "model": str(args.text_model),
                                                            "rows": len(hold), "settings": rows}, indent=2))
    cat = f"consistency_{category}" if category else None
    last = schema.text_columns[-1].name  # stock phrases the guard lets through (>= 1 % of rows) count here
    lines = [f"# Sampling settings on one text model ({time.strftime('%Y-%m-%d')}, 2 CPU cores)", "",
             f"Catalog {args.catalog}, `{args.preset}` model `{args.text_model}`, text for {len(hold)} held-out "
             f"rows; each score the mean over {args.seeds} sampling seeds; the real hold-out text's score in brackets; "
             "fast (naive Bayes) classifiers. Guided fields: how many text fields guidance steers (None: all).", "",
             "| temperature | top_k | top_p | guidance | guided fields | matmuls | category consistency | price coherence | "
             "name distinct-2 | description length KS | descriptions equal to a training one | copies redrawn | seconds |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        consistency = f"{r[cat]:.3f} ({r[cat + '_real']:.3f})" if cat else "n/a"
        lines.append(
            f"| {r['temperature']} | {r['top_k']} | {r['top_p']} | {r['guidance']} | {r['guided_fields']} | {r.get('precision', 'fp32')} | {consistency} | "
            f"{r.get('price_coherence', float('nan')):.3f} ({r.get('price_coherence_real', float('nan')):.3f}) | "
            f"{r[f'distinct2_{name}']:.3f} ({r[f'distinct2_{name}_real']:.3f}) | "
            f"{r.get(f'length_ks_{last}', float('nan')):.3f} | "
            f"{r[f'copy_exact_{last}']:.0%} ({r[f'copy_exact_{last}_real']:.0%}) | {r['redrawn']} | {r['seconds']} |"
        )
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
