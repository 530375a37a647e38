"""Text generation speed and output of one saved text model, for comparing two versions of the code.

Times `TextModel.generate` on dmart rows (drawn with replacement, seeded) with the model's own sampling
(guided) and with guidance off, and hashes the text written, so two checkouts run on the same machine in
turns (A B A B) show whether a change moved the speed or the text. Appends to
benchmarks/results/NAME.{json,md}.

    python benchmarks/text_speed.py --text-model DIR --label after [--rows 1024] [--name text_speed]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import statistics
import time
from pathlib import Path

import pandas as pd

import shopgen
from shopgen.presets import get_preset
from shopgen.text.estimator import TextModel

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text-model", type=Path, required=True, help="a TextModel.save_pretrained folder")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--catalog", default="dmart")
    parser.add_argument("--rows", type=int, default=1024)
    parser.add_argument("--label", required=True, help="which code ran, e.g. before / after")
    parser.add_argument("--code", default="this checkout", help="what the label names, e.g. a commit")
    parser.add_argument("--name", default="text_speed", help="the results' file name (e.g. text_speed_torch for a run "
                        "with SHOPGEN_NATIVE=0, the path a machine without a C compiler takes)")
    args = parser.parse_args()
    df = pd.read_csv(ROOT.parent / "shared" / "data" / args.catalog / "products.csv")
    model = TextModel.from_pretrained(args.text_model, get_preset(args.preset).text)
    rows = df.sample(args.rows, random_state=0, replace=True).reset_index(drop=True)
    out = {"label": args.label, "code": args.code, "rows": args.rows}
    print(f"shopgen from {Path(shopgen.__file__).parent}", flush=True)
    for name, cfg in (("guided", model.sampling), ("unguided", dataclasses.replace(model.sampling, guidance=0.0))):
        t0 = time.perf_counter()
        texts, _, _ = model.generate(rows, seed=0, show_progress=False, sampling=cfg)
        seconds = time.perf_counter() - t0
        tokens = sum(len(ids) for c in texts for ids in model.tokenizer_([t for t in texts[c] if t],
                                                                          add_special_tokens=False)["input_ids"])
        out[name] = {"seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds),
                     "text_sha256": hashlib.sha256(texts.to_json().encode()).hexdigest()[:16]}
    print(json.dumps(out), flush=True)
    path = RESULTS / f"{args.name}.json"
    runs = [*(json.loads(path.read_text()) if path.exists() else []), out]
    path.write_text(json.dumps(runs, indent=2))
    native = "native kernels off (SHOPGEN_NATIVE=0)" if os.environ.get("SHOPGEN_NATIVE") == "0" else "native kernels on"
    lines = ["# Text generation speed, run by run", "",
             f"`TextModel.generate` on {args.rows} {args.catalog} rows with a saved `{args.preset}` model, {native}, in the "
             "order the runs were made (one machine, nothing else running). Same text hash: the same text.", "",
             "| run | code | guided tokens/s | guided text | unguided tokens/s | unguided text |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['label']} | `{r['code']}` | {r['guided']['tokens_per_s']:,} | {r['guided']['text_sha256']} | "
              f"{r['unguided']['tokens_per_s']:,} | {r['unguided']['text_sha256']} |" for r in runs]
    lines += ["", "Median tokens/s per label:", ""]
    for label in dict.fromkeys(r["label"] for r in runs):
        mine = [r for r in runs if r["label"] == label]
        lines.append(f"- {label} ({len(mine)} runs): guided {statistics.median(r['guided']['tokens_per_s'] for r in mine):,.0f}, "
                     f"unguided {statistics.median(r['unguided']['tokens_per_s'] for r in mine):,.0f}")
    labels = list(dict.fromkeys(r["label"] for r in runs))
    if len(labels) == 2:  # taken in turns: the k-th run of each label ran side by side, under the same load
        pairs = list(zip(*([r for r in runs if r["label"] == label] for label in labels)))
        lines += ["", f"Geometric mean over the {len(pairs)} pairs of {labels[1]} / {labels[0]} (a busy spell slows both "
                  "runs of a pair, not one label):", ""]
        for name in ("guided", "unguided"):
            ratio = math.exp(statistics.fmean(math.log(b[name]["tokens_per_s"] / a[name]["tokens_per_s"]) for a, b in pairs))
            lines.append(f"- {name}: {ratio:.3f}")
    (RESULTS / f"{args.name}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
