"""Write shopgen/allowed.txt: every (module, name) a pickled tabular model needs to load.

Fits CTGAN, TVAE and the Gaussian copula on a frame with every kind of column shopgen learns (categories
with rare levels, ranked and two-level numbers, endings, a rule learned as a share and rules SDV keeps, a
mostly-missing number, a datetime, a derived column), and on the first rows of every real catalog in
../shared/data when it is there; records what their pickles name, and writes the sorted union. Run it after
upgrading SDV, rdt, ctgan, copulas, scikit-learn, numpy, pandas or torch; then read the diff: a name that
can reach other callables (getattr, eval, a loader of files or pickles) must never be added.

    .venv/bin/python scripts/allowed_names.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from shopgen.inference import infer_schema
from shopgen.presets import TabularPreset
from shopgen.safepickle import names_used
from shopgen.tabular import KINDS, TabularModel

OUT = Path(__file__).resolve().parents[1] / "shopgen" / "allowed.txt"
HEADER = """\
# The only (module, name) pairs a bundle's tabular.pkl may name, and (after "method") the only methods its
# objects may hold bound as attributes; shopgen.safepickle refuses any other.
# Written by scripts/allowed_names.py from the pickles of fitted models; review every added line.
"""


def frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    list_price = np.round(rng.lognormal(3, 0.8, n)) - 0.01
    sale = np.round(list_price * rng.uniform(0.5, 1.0, n), 2)
    qty = rng.integers(1, 5, n)
    rating = np.where(rng.uniform(size=n) < 0.7, np.nan, np.round(rng.uniform(1, 5, n), 1))
    start = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D")
    return pd.DataFrame({
        "sku": [f"SKU{100000 + i}" for i in range(n)],
        "category": rng.choice(["Shoes", "Bags", "Hats", "Socks"], n),
        "brand": [f"Brand {chr(65 + k % 26)}{k // 26}" for k in rng.zipf(1.6, n) % 90],
        "list_price": list_price,
        "sale_price": np.minimum(sale, list_price),
        "qty": qty,
        "total": np.round(np.minimum(sale, list_price) * qty, 2),
        "sold": rng.choice([1, 10, 100, 1000], n),
        "express": rng.choice([0, 1], n),
        "rating": rating,
        "listed": start.strftime("%Y-%m-%d"),
        "restocked": (start + pd.to_timedelta(rng.integers(0, 90, n), unit="D")).strftime("%Y-%m-%d %H:%M"),
        "reviews": (reviews := rng.integers(5, 500, n)),
        "five_star": np.floor(reviews * rng.uniform(0, 0.3, n)),
        "votes": reviews + rng.integers(0, 50, n),
        "colour": np.where(rng.uniform(size=n) < 0.2, None, rng.choice(["red", "blue", "green"], n)),
        "name": [f"{rng.choice(['Soft', 'Bold', 'Pro'])} {rng.choice(['Shoe', 'Bag', 'Hat'])} {i}" for i in range(n)],
    })


def frames() -> dict[str, pd.DataFrame]:
    from shopgen.sources import read_catalog

    out = {"built": frame()}
    data = Path(__file__).resolve().parents[2] / "shared" / "data"
    for path in sorted(data.glob("*/products.csv")) if data.is_dir() else []:
        out[path.parent.name] = read_catalog(path).head(2000)
    return out


def main() -> None:
    preset = TabularPreset(epochs=1, batch_size=100, max_seconds=60, max_categories=10)
    names: set[tuple[str, str]] = set()
    methods: set[tuple[str, str]] = set()
    for label, df in frames().items():
        schema = infer_schema(df, label).schema
        df = schema.check_frame(df)
        for kind in KINDS:
            model = TabularModel(kind, preset, epochs=1, seed=0).fit(schema, df, show_progress=False)
            found, bound = names_used(model)
            print(f"{label} {kind}: {len(found)} names, {len(found - names) + len(bound - methods)} new")
            names |= found
            methods |= bound
    if ("builtins", "getattr") in names:
        raise SystemExit("a pickle needs builtins.getattr: store what needs it another way, never allow it")
    OUT.write_text(HEADER + "".join(f"{m} {n}\n" for m, n in sorted(names))
                   + "".join(f"method {m} {q}\n" for m, q in sorted(methods)), encoding="utf-8")
    print(f"{len(names)} names, {len(methods)} methods -> {OUT}")


if __name__ == "__main__":
    main()
