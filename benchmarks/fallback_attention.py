"""Is the torch decoding path's slot grouping worth keeping? Text speed without native kernels, grouped or not.

Without a C compiler (a slim container image, Windows without a toolchain) or with SHOPGEN_NATIVE=0, the
slot decoder attends through torch ops. It groups neighbouring slots of similar length so that each group
reads only its own span of the cache (`decoder.slot_groups`). This times `TextModel.generate` on dmart rows
with that grouping and with one group over the longest slot's span (MIN_GROUP above the slot count), in
turns (A B A B), and writes benchmarks/results/fallback_attention.{json,md}.

    python benchmarks/fallback_attention.py --text-model DIR [--rows 512] [--runs 3]
"""

from __future__ import annotations

import os

os.environ["SHOPGEN_NATIVE"] = "0"  # before shopgen loads: the path a machine without a compiler takes

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402

from shopgen.presets import get_preset  # noqa: E402
from shopgen.text import kernels  # noqa: E402
from shopgen.text.estimator import TextModel  # noqa: E402
from shopgen.text.generate import decoder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text-model", type=Path, required=True, help="a TextModel.save_pretrained folder")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--catalog", default="dmart")
    parser.add_argument("--rows", type=int, default=512)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    assert kernels.kernel() is None, "the native kernels must be off for this benchmark"
    df = pd.read_csv(ROOT.parent / "shared" / "data" / args.catalog / "products.csv")
    model = TextModel.from_pretrained(args.text_model, get_preset(args.preset).text)
    rows = df.sample(args.rows, random_state=0, replace=True).reset_index(drop=True)
    grouped = decoder.MIN_GROUP
    variants = {"grouped": grouped, "one span": 10**9}
    runs = []
    for run in range(args.runs):
        for label, min_group in variants.items():
            decoder.MIN_GROUP = min_group
            for name, cfg in (("guided", model.sampling), ("unguided", dataclasses.replace(model.sampling, guidance=0.0))):
                t0 = time.perf_counter()
                texts, _, _ = model.generate(rows, seed=0, show_progress=False, sampling=cfg, allow_copies=True)
                seconds = time.perf_counter() - t0
                tokens = sum(len(ids) for c in texts for ids in model.tokenizer_(
                    [t for t in texts[c] if t], add_special_tokens=False)["input_ids"])
                runs.append({"run": run, "attention": label, "sampling": name, "seconds": round(seconds, 2),
                             "tokens_per_s": round(tokens / seconds),
                             "text_sha256": hashlib.sha256(texts.to_json().encode()).hexdigest()[:16]})
                print(json.dumps(runs[-1]), flush=True)
    decoder.MIN_GROUP = grouped
    (RESULTS / "fallback_attention.json").write_text(json.dumps(runs, indent=2))
    lines = ["# The torch decoding path: grouped attention or one span", "",
             f"`TextModel.generate` on {args.rows} {args.catalog} rows with a saved `{args.preset}` model and "
             "SHOPGEN_NATIVE=0 (what a machine without a C compiler runs), precision as the model's `auto` picks; "
             "the two variants in turns. Median tokens/s over the runs:", "",
             "| sampling | grouped | one span | grouped / one span | same text |", "|---|---|---|---|---|"]
    for name in ("guided", "unguided"):
        speed = {label: statistics.median(r["tokens_per_s"] for r in runs
                                          if r["attention"] == label and r["sampling"] == name) for label in variants}
        hashes = {r["text_sha256"] for r in runs if r["sampling"] == name}
        lines.append(f"| {name} | {speed['grouped']:,.0f} | {speed['one span']:,.0f} | "
                     f"{speed['grouped'] / speed['one span']:.2f} | {'yes' if len(hashes) == 1 else 'no'} |")
    (RESULTS / "fallback_attention.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
