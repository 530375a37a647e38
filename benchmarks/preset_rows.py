"""One product per text preset, written for the same real row: what `fast` text reads like beside `small`.

Loads the text models a `benchmarks/text_presets.py --save DIR` run kept (one per preset, fitted on 90 %
of the catalog), picks held-out rows of the catalog's most common category (seeded), and writes each
preset's name and description for them with the bundle's own sampling and the copy guard on. Only the
category and the generated text are reported: the real row's other values stay out of the repository.
Writes benchmarks/results/preset_rows.md, keeping the sections of presets it does not run.

    python benchmarks/preset_rows.py --load /tmp/presets --catalog dmart --presets fast small
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pandas as pd

from shopgen.inference import infer_schema
from shopgen.presets import PRESETS, get_preset
from shopgen.text.estimator import TextModel

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load", type=Path, required=True, help="the folder a text_presets.py --save run kept")
    parser.add_argument("--catalog", default="dmart")
    parser.add_argument("--presets", nargs="+", default=["fast", "small"])
    parser.add_argument("--rows", type=int, default=2)
    args = parser.parse_args()
    raw = pd.read_csv(ROOT.parent / "shared" / "data" / args.catalog / "products.csv")
    schema = infer_schema(raw, name=args.catalog).schema
    df = schema.check_frame(raw)
    hold = df.drop(df.sample(frac=0.9, random_state=0).index)  # text_presets.py's hold-out
    category = next(c for c in schema.conditions if "ategor" in c)
    top = hold[category].value_counts().index[0]
    rows = hold[hold[category] == top].sample(args.rows, random_state=1)
    lines = [f"# One product per text preset ({args.catalog})", "",
             f"Name and description each preset's text model wrote for the same {args.rows} held-out rows of the "
             f"catalog's most common {category} ({top}); models fitted by `benchmarks/text_presets.py --save` "
             "within each preset's budget on 2 CPU cores, sampled with the bundle's defaults, copy guard on.", ""]
    path = RESULTS / "preset_rows.md"
    # the same rows every run: a preset not rerun keeps the section an earlier run wrote for this catalog
    sections = dict(re.findall(r"^## (\w+) (.*?)(?=^## |\Z)", path.read_text(), re.S | re.M)) if path.exists() else {}
    if not path.exists() or not path.read_text().startswith(lines[0]):
        sections = {}
    for preset in args.presets:
        model = TextModel.from_pretrained(args.load / f"{args.catalog}_{preset}", get_preset(preset).text)
        texts, _, _ = model.generate(rows, seed=0, show_progress=False)
        body = [f"({model.stats_.seconds:.0f} s of training, validation loss {model.stats_.val_loss})", ""]
        for record in texts.to_dict("records"):
            body += [f"- **{record[c]}**" if i == 0 else f"  {record[c]}" for i, c in enumerate(texts.columns)]
        sections[preset] = "\n".join(body) + "\n\n"
    for preset in sorted(sections, key=list(PRESETS).index):
        lines.append(f"## {preset} {sections[preset]}".rstrip("\n") + "\n")
    path.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
