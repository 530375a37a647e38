"""The purchase model against the baselines it has to beat: a count model and SDV's HMA and PAR.

On a real shop folder (default ../shared/data/online_retail) and the split of benchmarks/shop.py (real customers
split 80/20 by `split_customers(log, roles, seed=seed)`), each model learns the training log, samples as many new
customers as it saw, and is scored against the held-out 20 % with the scores of benchmarks/shop.py:
- fidelity KS (baskets per customer, lines per basket, product popularity, days between baskets);
- recall@20 / NDCG@20 of implicit's ALS, item-kNN and popularity trained on the sampled log (over the real
  catalog) and tested on the held-out customers' last baskets, and recall's ratio to the same recommender trained
  on the real training log (all training customers);
- privacy: sampled product sets and baskets equal to a training customer's or basket (`privacy`).
The models:
- PurchaseModel (shopgen/purchases.py), the reference row;
- a count model: baskets per customer and lines per basket drawn from their real distributions, each line's
  product drawn on its own by training popularity, basket moments drawn from the real baskets' moments;
- SDV HMASynthesizer, customers -> lines (StockCode a categorical column of the lines, so every sampled code is a
  real one; the line's basket is its basket number within the customer, a numerical column). SDV's public HMA
  refuses a depth-3 schema, so there is no customers -> invoices -> lines hierarchy. Fitted on all training
  customers (it is fast) and on the subsample below;
- SDV HMASynthesizer with products as a second parent of the lines (StockCode the lines' foreign key to products):
  HMA samples new products with new keys, so none of its lines points at a real product; it is scored after
  mapping each sampled product to the real product of its sampled Description;
- SDV PARSynthesizer: each customer's lines one sequence (sequence key CustomerID, sequence index InvoiceDate,
  StockCode categorical, a "starts a basket" flag keeping the baskets, the customer's Country as context). PAR pads every
  sequence to the longest and one-hot encodes the catalog (3,659 products here), so sequences are cut at `--par-max-lines`
  lines, and trains one full-batch step per epoch (`--par-epochs`).
The SDV models, and PurchaseModel and the count model once more for a fair comparison at equal data, learn from
`--sdv-customers` training customers drawn at random (seeded) and all their lines. The real log of those
customers is scored too (what a real sample of that size scores). For the spread at equal data, the fast models
(PurchaseModel, count model, HMA with StockCode categorical) are refitted on `--more-subsamples` further draws of as
many customers, and their recall ratios are given as mean ± sd. Times are wall seconds of one process.

PAR's padded tensors are allocated anew every epoch; glibc hands such blocks back to the OS and page-faults them
in again, which made PAR's epochs several times slower here. The script re-executes itself once with MALLOC_MMAP_MAX_=0 and a
high MALLOC_TRIM_THRESHOLD_ so freed memory stays in the heap (a speed-up for SDV, no change to any result).
Writes benchmarks/results/shop_baselines.{json,md}.

    python benchmarks/shop_baselines.py [--shop DIR] [--seed 0] [--sdv-customers 200] [--par-epochs 50]
        [--par-max-lines 200] [--more-subsamples 4] [--skip hma_full|hma|hma_products|par]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from shopgen.evaluation.shop import Split, fidelity, privacy, recommenders, split_customers
from shopgen.purchases import LogRoles, PurchaseModel, log_roles
from shopgen.shop_inference import infer_shop
from shopgen.sources import read_shop

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FIDELITY = ("ks_baskets_per_customer", "ks_lines_per_basket", "ks_product_popularity", "ks_days_between_baskets")
RECOMMENDERS = ("als", "item_knn", "popularity")
SKIPPABLE = ("hma_full", "hma", "hma_products", "par")
FAST = ("real subsample", "PurchaseModel", "count model", "HMA (StockCode categorical)")
MALLOC = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2 ** 40)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shop", type=Path, default=ROOT.parent / "shared" / "data" / "online_retail")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sdv-customers", type=int, default=200,
                        help="training customers the SDV models (and the equal-data rows) learn from")
    parser.add_argument("--par-epochs", type=int, default=50, help="PAR epochs (one full-batch step each)")
    parser.add_argument("--par-max-lines", type=int, default=200, help="PAR sees each customer's first N lines")
    parser.add_argument("--more-subsamples", type=int, default=4,
                        help="further subsamples (seed+1, ...) on which the fast models are refitted, for the spread")
    parser.add_argument("--skip", action="append", default=[], choices=SKIPPABLE, help="leave a model out")
    args = parser.parse_args()
    if sys.platform.startswith("linux") and any(os.environ.get(k) != v for k, v in MALLOC.items()):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **MALLOC})
    quiet()
    started = time.perf_counter()
    frames = read_shop(args.shop)
    shop = infer_shop(frames, name=args.shop.name).schema
    roles = log_roles(shop, frames)
    items = frames[roles.items][shop.table(roles.items).primary_key].to_numpy()
    split = split_customers(frames[roles.table], roles, seed=args.seed)
    train_ids = np.sort(split.train[roles.customer].unique())
    few = np.random.default_rng(args.seed).permutation(train_ids)[:args.sdv_customers]
    small = split.train[split.train[roles.customer].isin(set(few.tolist()))]
    out = {"shop": args.shop.name, "seed": args.seed, "train_customers": len(train_ids),
           "train_lines": len(split.train), "held_out_customers": int(split.held_out[roles.customer].nunique()),
           "scored_customers": int(split.target[roles.customer].nunique()), "sdv_customers": len(few),
           "sdv_lines": len(small), "par_epochs": args.par_epochs, "par_max_lines": args.par_max_lines,
           "more_subsamples": args.more_subsamples, "cpus": os.cpu_count(), "rows": []}
    real_scores = recommenders(split.train, split, roles, items, seed=args.seed)

    def record(name: str, group: str, run, note: str = "") -> None:
        """Fit and sample with `run` (returns the log, fit s, sample s and extras), score the log, keep the row."""
        print(f"[{time.perf_counter() - started:7.1f} s] {name} ...", flush=True)
        row = {"model": name, "group": group, "note": note}
        try:
            log, fit_s, sample_s, extra = run()
        except Exception as exc:  # a baseline that cannot run keeps its row, with the reason
            row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:400]
            out["rows"].append(row)
            print(f"    failed: {row['error']}", flush=True)
            return
        row.update(score(log, split, roles, items, real_scores, args.seed, is_real=fit_s is None,
                         scores=real_scores if log is split.train else None))
        row.update(fit_s=None if fit_s is None else round(fit_s, 1),
                   sample_s=None if sample_s is None else round(sample_s, 1), **extra)
        out["rows"].append(row)
        print(f"    {json.dumps({k: row[k] for k in ('fit_s', 'sample_s', 'customers', 'lines')})}", flush=True)

    full, sub = f"all {len(train_ids):,} training customers", f"{len(few):,} training customers"
    record("real training log", full, lambda: (split.train, None, None, {}))
    record("PurchaseModel", full, lambda: purchase_model(frames, shop, roles, split.train, args.seed))
    record("count model", full, lambda: count_model(split.train, roles, args.seed))
    if "hma_full" not in args.skip:
        record("HMA (StockCode categorical)", full, lambda: hma(frames, roles, split.train, args.seed))
    record("real subsample", sub, lambda: (small, None, None, {}))
    record("PurchaseModel", sub, lambda: purchase_model(frames, shop, roles, small, args.seed))
    record("count model", sub, lambda: count_model(small, roles, args.seed))
    if "hma" not in args.skip:
        record("HMA (StockCode categorical)", sub, lambda: hma(frames, roles, small, args.seed))
    if "hma_products" not in args.skip:
        record("HMA (products as 2nd parent)", sub, lambda: hma(frames, roles, small, args.seed, products=True),
               note="sampled products have new keys; lines mapped to the real product of the sampled Description")
    if "par" not in args.skip:
        record("PAR", sub, lambda: par(frames, roles, small, args.seed, args.par_epochs, args.par_max_lines),
               note=f"each customer's first {args.par_max_lines} lines; {args.par_epochs} epochs")
    # the equal-data comparison on further subsamples of as many customers (same held-out customers), fast models only
    spread = {name: {m: [row["recall_ratio"][m]] for m in RECOMMENDERS} for row in out["rows"]
              if row["group"] == sub and "error" not in row and (name := row["model"]) in FAST}
    for seed in range(args.seed + 1, args.seed + 1 + args.more_subsamples):
        print(f"[{time.perf_counter() - started:7.1f} s] subsample {seed} ...", flush=True)
        ids = set(np.random.default_rng(seed).permutation(train_ids)[:args.sdv_customers].tolist())
        other = split.train[split.train[roles.customer].isin(ids)]
        for name in spread:
            log = (other if name == "real subsample" else
                   purchase_model(frames, shop, roles, other, seed)[0] if name == "PurchaseModel" else
                   count_model(other, roles, seed)[0] if name == "count model" else hma(frames, roles, other, seed)[0])
            scores = recommenders(log, split, roles, items, seed=seed)
            for m in RECOMMENDERS:
                spread[name][m].append(scores[m]["recall@20"] / max(real_scores[m]["recall@20"], 1e-12))
    out["subsample_recall_ratios"] = spread
    out["total_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(out, indent=2))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "shop_baselines.json").write_text(json.dumps(out, indent=2))
    (RESULTS / "shop_baselines.md").write_text(render(out))


def quiet() -> None:
    warnings.filterwarnings("ignore")
    for name in ("sdv", "rdt", "copulas", "deepecho", "SingleTableSynthesizer", "MultiTableSynthesizer"):
        logging.getLogger(name).setLevel(logging.ERROR)


def seed_all(seed: int) -> None:
    """SDV draws from numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:
        pass


def score(log: pd.DataFrame, split: Split, roles: LogRoles, items: np.ndarray, real_scores: dict, seed: int,
          is_real: bool, scores: dict | None = None) -> dict:
    catalog = set(pd.Index(items).astype(str))
    known = log[roles.item].astype(str).isin(catalog)
    row = {"customers": int(log[roles.customer].nunique()), "lines": len(log),
           "baskets": int(log[roles.basket].nunique()), "unknown_product_lines": int((~known).sum()),
           "one_line_customers": float((log.groupby(roles.customer).size() == 1).mean())}
    row["fidelity"] = fidelity(log, split.held_out, roles, items)
    scores = scores or recommenders(log, split, roles, items, seed=seed)
    row["recommenders"] = scores
    row["recall_ratio"] = {m: scores[m]["recall@20"] / max(real_scores[m]["recall@20"], 1e-12) for m in scores}
    if not is_real:  # the real logs are the training data: their copies of it say nothing
        row["privacy"] = privacy(log, split, roles)
    return row


# ---- the models: each returns (log, fit seconds, sample seconds, extras) ------------------------------------------
def purchase_model(frames: dict, shop, roles: LogRoles, train: pd.DataFrame, seed: int):
    t0 = time.perf_counter()
    model = PurchaseModel().fit({**frames, roles.table: train}, shop)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    log = model.sample(train[roles.customer].nunique(), seed=seed)
    return log, fit_s, time.perf_counter() - t0, {}


def count_model(train: pd.DataFrame, roles: LogRoles, seed: int):
    """Baskets per customer, lines per basket, products and basket moments each drawn on their own."""
    t0 = time.perf_counter()
    per_customer = train.groupby(roles.customer)[roles.basket].nunique().to_numpy()
    per_basket = train.groupby(roles.basket).size().to_numpy()
    codes, counts = np.unique(train[roles.item].astype(str).to_numpy(), return_counts=True)
    moments = pd.to_datetime(train.drop_duplicates(roles.basket)[roles.time]).to_numpy()
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    n = train[roles.customer].nunique()
    baskets = rng.choice(per_customer, n)
    sizes = rng.choice(per_basket, baskets.sum())
    owner = np.repeat(np.arange(n), baskets)
    when = rng.choice(moments, len(sizes))
    when = when[np.lexsort((when, owner))]  # each customer's baskets in time order
    basket = np.repeat(np.arange(len(sizes)), sizes)
    log = pd.DataFrame({roles.customer: owner[basket] + 1, roles.item: rng.choice(codes, len(basket), p=counts / counts.sum()),
                        roles.basket: basket + 1, roles.time: when[basket]})
    return log, fit_s, time.perf_counter() - t0, {}


def lines_with_baskets(train: pd.DataFrame, roles: LogRoles) -> pd.DataFrame:
    """The log in time order per customer, with each line's basket number within its customer."""
    lines = train.assign(**{roles.time: pd.to_datetime(train[roles.time])})
    lines = lines.sort_values([roles.customer, roles.time, roles.basket], kind="stable").reset_index(drop=True)
    first = lines[roles.basket].ne(lines.groupby(roles.customer)[roles.basket].shift())
    return lines.assign(basket_number=first.astype(int).groupby(lines[roles.customer]).cumsum(), new_basket=first)


def as_log(lines: pd.DataFrame, roles: LogRoles, numbers: str) -> pd.DataFrame:
    """A sampled table of lines as a purchase log: a basket is a customer's lines of one basket number, at the
    moment of its earliest line."""
    key = lines[roles.customer].astype(str) + "/" + lines[numbers].astype(str)
    basket = pd.factorize(key)[0] + 1
    when = pd.to_datetime(lines[roles.time]).groupby(basket).transform("min")
    return pd.DataFrame({roles.customer: pd.factorize(lines[roles.customer])[0] + 1,
                         roles.item: lines[roles.item].to_numpy(), roles.basket: basket, roles.time: when.to_numpy()})


def hma(frames: dict, roles: LogRoles, train: pd.DataFrame, seed: int, products: bool = False):
    from sdv.metadata import Metadata
    from sdv.multi_table import HMASynthesizer

    lines = lines_with_baskets(train, roles)
    customers = frames[roles.customers][frames[roles.customers][roles.customer].isin(set(lines[roles.customer]))]
    customers = customers.reset_index(drop=True)
    extras = [c for c in train.columns if c not in (roles.customer, roles.item, roles.basket, roles.time)]
    data = {roles.customers: dates(customers),
            roles.table: lines[[roles.customer, roles.item, "basket_number", roles.time, *extras]]}
    if products:
        data[roles.items] = dates(frames[roles.items])
    metadata = Metadata.detect_from_dataframes(data, infer_keys=None)
    metadata.update_column(roles.customer, table_name=roles.customers, sdtype="id")
    metadata.set_primary_key(roles.customer, table_name=roles.customers)
    metadata.update_column(roles.customer, table_name=roles.table, sdtype="id")
    metadata.add_relationship(roles.customers, roles.table, roles.customer, roles.customer)
    for table, frame in data.items():  # text columns of a few thousand values: categories, not ids to invent
        for column in frame.columns:
            sdtype = metadata.tables[table].columns[column]["sdtype"]
            if frame[column].dtype == object and sdtype not in ("id", "categorical"):
                metadata.update_column(column, table_name=table, sdtype="categorical")
    if products:
        metadata.update_column(roles.item, table_name=roles.items, sdtype="id")
        metadata.set_primary_key(roles.item, table_name=roles.items)
        metadata.update_column(roles.item, table_name=roles.table, sdtype="id")
        metadata.add_relationship(roles.items, roles.table, roles.item, roles.item)
    else:
        metadata.update_column(roles.item, table_name=roles.table, sdtype="categorical")
    metadata.validate()
    seed_all(seed)
    synthesizer = HMASynthesizer(metadata, verbose=False)
    t0 = time.perf_counter()
    synthesizer.fit(data)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    sampled = synthesizer.sample_scale(scale=1.0)
    sample_s = time.perf_counter() - t0
    sampled_lines = sampled[roles.table]
    catalog = set(pd.Index(frames[roles.items][roles.item]).astype(str))
    extra = {"sampled_customers": len(sampled[roles.customers]),
             "sampled_unknown_product_lines": int((~sampled_lines[roles.item].astype(str).isin(catalog)).sum())}
    if products:  # new product keys: back to the real product whose description the sampled product drew
        real = frames[roles.items].drop_duplicates("Description").set_index("Description")[roles.item]
        by_key = sampled[roles.items].set_index(roles.item)["Description"]
        code = real.reindex(by_key.reindex(sampled_lines[roles.item]).to_numpy()).to_numpy()
        sampled_lines = sampled_lines.assign(**{roles.item: code})
        extra["sampled_products"] = len(sampled[roles.items])
    return as_log(sampled_lines, roles, "basket_number"), fit_s, sample_s, extra


def dates(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns of date strings as datetimes, so SDV models them as dates."""
    frame = frame.copy()
    for column in frame.columns:
        if frame[column].dtype == object and frame[column].astype(str).str.match(r"^\d{4}-\d\d-\d\d[ T]\d").all():
            frame[column] = pd.to_datetime(frame[column])
    return frame


def par(frames: dict, roles: LogRoles, train: pd.DataFrame, seed: int, epochs: int, max_lines: int):
    from sdv.metadata import Metadata
    from sdv.sequential import PARSynthesizer

    lines = lines_with_baskets(train, roles)
    lines = lines[lines.groupby(roles.customer).cumcount() < max_lines]
    context = [c for c in ("Country",) if c in frames[roles.customers].columns]  # a customer's own, constant column
    customers = frames[roles.customers].set_index(roles.customer)
    extras = [c for c in train.columns if c not in (roles.customer, roles.item, roles.basket, roles.time)]
    table = lines.assign(**{c: customers[c].reindex(lines[roles.customer]).to_numpy() for c in context},
                         new_basket=lines["new_basket"].map({True: "yes", False: "no"}))
    table = table[[roles.customer, *context, roles.time, "new_basket", roles.item, *extras]].reset_index(drop=True)
    metadata = Metadata.detect_from_dataframes({roles.table: table}, infer_keys=None)
    metadata.update_column(roles.customer, table_name=roles.table, sdtype="id")
    metadata.set_sequence_key(roles.customer, table_name=roles.table)
    metadata.set_sequence_index(roles.time, table_name=roles.table)
    for column in (*context, "new_basket", roles.item):
        metadata.update_column(column, table_name=roles.table, sdtype="categorical")
    metadata.validate()
    seed_all(seed)
    synthesizer = PARSynthesizer(metadata, context_columns=context, epochs=epochs, cuda=False, verbose=False)
    t0 = time.perf_counter()
    synthesizer.fit({roles.table: table})
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    sampled = synthesizer.sample_sequences(table[roles.customer].nunique())
    sample_s = time.perf_counter() - t0
    sampled = sampled[roles.table] if isinstance(sampled, dict) else sampled
    sampled = sampled.reset_index(drop=True)
    first = sampled[roles.customer].ne(sampled[roles.customer].shift())
    starts = first | sampled["new_basket"].eq("yes")  # a sequence's first line starts a basket
    sampled = sampled.assign(basket_number=starts.astype(int).groupby(sampled[roles.customer]).cumsum())
    catalog = set(pd.Index(frames[roles.items][roles.item]).astype(str))
    extra = {"trained_lines": len(table), "final_loss": float(synthesizer.get_loss_values()["Loss"].iloc[-1]),
             "sampled_unknown_product_lines": int((~sampled[roles.item].astype(str).isin(catalog)).sum())}
    return as_log(sampled, roles, "basket_number"), fit_s, sample_s, extra


# ---- report ---------------------------------------------------------------------------------------------------------
def render(out: dict) -> str:
    rows = out["rows"]
    ok = [r for r in rows if "error" not in r]
    lines = [f"# The purchase model against its baselines ({out['shop']}, split seed {out['seed']})", "",
             f"Same split and scores as benchmarks/shop.py: {out['train_customers']:,} training customers "
             f"({out['train_lines']:,} lines), scored against {out['held_out_customers']:,} held-out customers "
             f"(recommenders on the last basket of the {out['scored_customers']:,} with two or more baskets). Each "
             f"model samples as many customers as it learned from. The SDV models learn from a seeded random "
             f"{out['sdv_customers']:,} of the training customers ({out['sdv_lines']:,} lines), and PurchaseModel and "
             f"the count model are fitted on the same customers for a comparison at equal data. "
             f"The count model draws baskets per customer, lines per basket, products (by training popularity) and "
             f"basket moments each on its own. HMA (StockCode categorical): customers -> lines, each line's basket "
             f"number within its customer a numerical column (SDV's public HMA refuses a depth-3 schema "
             f"customers -> invoices -> lines). HMA (products as 2nd parent): lines are children of customers and "
             f"of products; HMA samples new products with new keys, so every line points at an unknown product; "
             f"it is scored after mapping each sampled product to the real product of its sampled Description. "
             f"PAR: one sequence per customer (InvoiceDate the sequence index, StockCode categorical, a "
             f"'starts a basket' flag, Country as context), cut at the customer's first {out['par_max_lines']} lines "
             f"(PAR pads every sequence to the longest and one-hot encodes the products) and trained "
             f"{out['par_epochs']} epochs (one full-batch step each).", "",
             f"Times: wall seconds, one process, on a shared machine ({out['cpus']} cores shared with other work), "
             f"so only their order of magnitude is meaningful. The whole run took {out['total_s'] / 60:.0f} minutes.",
             ""]
    failed = [r for r in rows if "error" in r]
    if failed:
        lines += ["Models that could not run:", ""]
        lines += [f"- {r['model']} ({r['group']}): {r['error']}" for r in failed]
        lines.append("")

    def name(r: dict) -> str:
        return f"{r['model']} | {r['group']}"

    def num(v, fmt: str) -> str:
        return "–" if v is None else format(v, fmt)

    lines += ["## Run", "", "| model | trained on | fit s | sample s | customers | lines | baskets | customers with one "
              "line | lines on unknown products | note |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in ok:
        unknown = str(r.get("sampled_unknown_product_lines", r["unknown_product_lines"]))
        if "sampled_products" in r:
            unknown += f" before mapping, {r['unknown_product_lines']} after"
        lines.append(f"| {name(r)} | {num(r['fit_s'], '.1f')} | {num(r['sample_s'], '.1f')} | {r['customers']:,} | "
                     f"{r['lines']:,} | {r['baskets']:,} | {r['one_line_customers']:.1%} | {unknown} | {r['note']} |")
    lines += ["", "## Fidelity (KS against the held-out customers; lower is closer)", "",
              "| model | trained on | " + " | ".join(k.removeprefix("ks_").replace("_", " ") for k in FIDELITY) + " |",
              "|---|---|" + "---|" * len(FIDELITY)]
    for r in ok:
        lines.append(f"| {name(r)} | " + " | ".join(num(r["fidelity"].get(k), ".3f") for k in FIDELITY) + " |")
    lines += ["", "## Recommenders trained on the log, tested on the held-out customers' last baskets", "",
              "recall@20 / NDCG@20, and recall's ratio to the same recommender trained on the real training log "
              "(all training customers).", "",
              "| model | trained on | " + " | ".join(f"{m} recall | {m} NDCG | {m} ratio" for m in RECOMMENDERS) + " |",
              "|---|---|" + "---|" * (3 * len(RECOMMENDERS))]
    for r in ok:
        cells = []
        for m in RECOMMENDERS:
            s = r["recommenders"][m]
            cells += [f"{s['recall@20']:.4f}", f"{s['ndcg@20']:.4f}", f"{r['recall_ratio'][m]:.2f}"]
        lines.append(f"| {name(r)} | " + " | ".join(cells) + " |")
    spread = out.get("subsample_recall_ratios", {})
    if spread and len(next(iter(spread.values()))[RECOMMENDERS[0]]) > 1:
        k = len(next(iter(spread.values()))[RECOMMENDERS[0]])
        lines += ["", f"The same at equal data on {k} random subsamples of {out['sdv_customers']:,} training customers "
                  f"(seeds {out['seed']} to {out['seed'] + k - 1}; the first is the one above; same held-out "
                  "customers): recall ratio, mean ± standard deviation.", "",
                  "| model | " + " | ".join(RECOMMENDERS) + " |", "|---|" + "---|" * len(RECOMMENDERS)]
        for model, ratios in spread.items():
            lines.append(f"| {model} | " + " | ".join(f"{np.mean(ratios[m]):.2f} ± {np.std(ratios[m], ddof=1):.2f}"
                                                     for m in RECOMMENDERS) + " |")
    lines += ["", "## Privacy (share equal to a training customer's product set, or to a training basket)", "",
              "| model | trained on | whole product set | basket |", "|---|---|---|---|"]
    held = next((r["privacy"] for r in ok if "privacy" in r), None)
    for r in ok:
        if "privacy" in r:
            p = r["privacy"]
            lines.append(f"| {name(r)} | {p['customer_set_copies_synthetic']:.4f} | {p['basket_copies_synthetic']:.4f} |")
    if held:
        lines.append(f"| held-out real customers | – | {held['customer_set_copies_held_out']:.4f} | "
                     f"{held['basket_copies_held_out']:.4f} |")
    lines += ["", "## Conclusion", "", conclusion(out), "", "## Rerun", "",
              f"    .venv/bin/python benchmarks/shop_baselines.py --seed {out['seed']} --sdv-customers "
              f"{out['sdv_customers']} --par-epochs {out['par_epochs']} --par-max-lines {out['par_max_lines']} "
              f"--more-subsamples {out.get('more_subsamples', 0)}"]
    return "\n".join(lines) + "\n"


def conclusion(out: dict) -> str:
    """The findings in a few sentences, with the words chosen by the numbers."""
    rows = {(r["model"], r["group"].startswith("all")): r for r in out["rows"] if "error" not in r}
    failed = [f"{r['model']} ({r['error']})" for r in out["rows"] if "error" in r]

    def ratio(model: str, full: bool, m: str) -> float | None:
        row = rows.get((model, full))
        return None if row is None else row["recall_ratio"][m]

    def ks(model: str, full: bool, k: str) -> float | None:
        row = rows.get((model, full))
        return None if row is None else row["fidelity"].get(k)

    def f(v: float | None, digits: int = 2) -> str:
        return "–" if v is None else f"{v:.{digits}f}"

    said, best_full = [], False
    pm, cm, hm = "PurchaseModel", "count model", "HMA (StockCode categorical)"
    if (pm, True) in rows and (cm, True) in rows:
        others = [m for m in (cm, hm) if (m, True) in rows]
        best = best_full = all(ratio(pm, True, m) > max(ratio(o, True, m) for o in others) for m in ("als", "item_knn"))
        said.append(
            f"With all {out['train_customers']:,} training customers, PurchaseModel's log trains ALS and item-kNN to "
            f"{f(ratio(pm, True, 'als'))} and {f(ratio(pm, True, 'item_knn'))} of the real log's recall@20, "
            + ("above " if best else "against ") + " and ".join(
                f"{'the count model' if o == cm else 'HMA'}'s {f(ratio(o, True, 'als'))} and {f(ratio(o, True, 'item_knn'))}"
                for o in others)
            + f", with a product-popularity KS of {f(ks(pm, True, 'ks_product_popularity'), 3)} (count model "
            f"{f(ks(cm, True, 'ks_product_popularity'), 3)}"
            + (f", HMA {f(ks(hm, True, 'ks_product_popularity'), 3)}" if (hm, True) in rows else "")
            + "); baskets per customer and lines per basket are as close as the count model's, which copies those "
            "distributions" + (f", while HMA's per-customer basket numbers miss them (KS "
                               f"{f(ks(hm, True, 'ks_baskets_per_customer'), 3)} and "
                               f"{f(ks(hm, True, 'ks_lines_per_basket'), 3)})" if (hm, True) in rows else "") + ".")
        said.append(
            f"Its popularity recommender is the weak spot: {f(ratio(pm, True, 'popularity'))} of real, where the count "
            f"model, which draws every product by its training popularity, gets {f(ratio(cm, True, 'popularity'))}.")
    spread = out.get("subsample_recall_ratios", {})
    if pm in spread and len(spread[pm]["als"]) > 1:
        n = len(spread[pm]["als"])
        means = {model: {m: float(np.mean(v[m])) for m in RECOMMENDERS} for model, v in spread.items()}
        sds = {model: {m: float(np.std(v[m], ddof=1)) for m in RECOMMENDERS} for model, v in spread.items()}
        baselines = [m for m in (cm, hm) if m in means]
        verdicts = {}
        for m in ("als", "item_knn"):
            top = max(means[b][m] for b in baselines)
            noise = max(sds[pm][m], *(sds[b][m] for b in baselines))
            verdicts[m] = ("beats" if means[pm][m] > top + noise else "trails" if means[pm][m] < top - noise
                           else "is level with")
        detail = {m: f"{means[pm][m]:.2f} against " + ", ".join(
            f"{'count model' if b == cm else 'HMA'} {means[b][m]:.2f}" for b in baselines) for m in verdicts}
        real = means.get("real subsample", {})
        said.append(
            f"At equal data ({out['sdv_customers']:,} customers, mean over {n} subsamples, differences under a "
            f"standard deviation called level) PurchaseModel {verdicts['als']} the better baseline on ALS "
            f"({detail['als']}) and {verdicts['item_knn']} it on item-kNN ({detail['item_knn']})"
            + f"; the real log of those customers itself gets {real.get('als', float('nan')):.2f} and "
            f"{real.get('item_knn', float('nan')):.2f}"
            + (", so its edge shows only with the whole log" if best_full and set(verdicts.values()) != {"beats"}
               else "") + ".")
    par_row, hp = rows.get(("PAR", False)), rows.get(("HMA (products as 2nd parent)", False))
    sdv = []
    if par_row:
        real_sub = rows.get(("real subsample", False))
        per = par_row["lines"] / max(par_row["customers"], 1)
        sdv.append(f"PAR is undertrained after {out['par_epochs']} epochs ({par_row['fit_s']:.0f} s, one full-batch "
                   f"step each, the product a one-hot over the whole catalog), samples {per:.0f} lines per customer"
                   + (f" against {real_sub['lines'] / max(real_sub['customers'], 1):.0f} real" if real_sub else "")
                   + f" and reaches {f(par_row['recall_ratio']['als'])} on ALS")
    if hp:
        sdv.append(f"HMA with products as a second parent invents new products, so none of its "
                   f"{hp['lines']:,} lines names a real one and, mapped back by description, it reaches "
                   f"{f(hp['recall_ratio']['als'])} on ALS and a product-popularity KS of "
                   f"{f(hp['fidelity']['ks_product_popularity'], 3)}")
    if sdv:
        said.append("Of the SDV models, " + "; ".join(sdv) + ".")
    if failed:
        said.append("Could not run: " + "; ".join(failed) + ".")
    held = next((r["privacy"]["customer_set_copies_held_out"] for r in rows.values() if "privacy" in r), None)
    copies = {f"{model} ({'all' if full else out['sdv_customers']})": r["privacy"]["customer_set_copies_synthetic"]
              for (model, full), r in rows.items() if "privacy" in r}
    above = {k: v for k, v in copies.items() if held is not None and v > held}
    if held is not None:
        why = ""
        hma_rows = [r for (model, _), r in rows.items() if model == hm]
        real_one = rows.get(("real training log", True), {}).get("one_line_customers")
        if any(k.startswith(hm) for k in above) and hma_rows and real_one is not None:
            why = (f" (HMA gives {max(r['one_line_customers'] for r in hma_rows):.0%} of its customers a single line, "
                   f"the real log {real_one:.0%}, and a one-product customer easily equals a real one)")
        pm_copies = [v for k, v in copies.items() if k.startswith(pm)]
        said.append(f"On privacy, PurchaseModel copies {'no' if not any(pm_copies) else 'a few'} whole training "
                    f"customers (held-out real customers: {held:.4f}); "
                    + ("above that rate: " + ", ".join(f"{k} {v:.4f}" for k, v in above.items()) + why
                       if above else "no model copies more than the held-out rate") + ".")
    return " ".join(said)


if __name__ == "__main__":
    main()
