"""A whole shop's purchase log: fidelity, recommender utility and privacy of synthetic customers.

On a real shop folder (default ../shared/data/online_retail): infer the shop schema, split the real
customers 80/20 (seeded), fit the purchase model on the 80 %'s log, sample as many new customers over the
real products, and score against the held-out 20 %:
- fidelity KS (baskets per customer, lines per basket, product popularity, days between baskets), next to
  the KS of the real training customers against the same hold-out (what a real sample of that size scores);
- recall@20 / NDCG@20 of implicit's ALS, item-kNN and popularity trained on the synthetic log and on the real
  training log, on the held-out customers' last baskets;
- augmentation: a log of 10 % of the training customers, alone and with the synthetic customers added;
- privacy: whole product sets and baskets equal to a training customer's, next to the hold-out's rate;
- the time to sample a whole shop of 100,000 new customers and write it as Parquet (`--scale`);
- a whole new shop (new products with their text), validated and scored by `evaluate_shop` (`--whole`).
Writes benchmarks/results/shop.{json,md}.

    python benchmarks/shop.py [--shop DIR] [--scale 100000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from shopgen.evaluation.shop import fidelity, privacy, recommenders, split_customers
from shopgen.options import FitOptions
from shopgen.purchases import PurchaseModel, log_roles
from shopgen.shop_inference import infer_shop
from shopgen.shop_synthesizer import ShopSynthesizer
from shopgen.sinks import write_shop
from shopgen.sources import read_shop

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shop", type=Path, default=ROOT.parent / "shared" / "data" / "online_retail")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--more-seeds", type=int, default=2,
                        help="further splits and samples (seed+1, ...) over which the recall ratios are also given")
    parser.add_argument("--scale", type=int, default=100_000, help="customers to time sampling with (0: skip)")
    parser.add_argument("--whole", action=argparse.BooleanOptionalAction, default=True,
                        help="also fit the product and text models and sample a whole new shop")
    args = parser.parse_args()
    frames = read_shop(args.shop)
    shop = infer_shop(frames, name=args.shop.name).schema
    roles = log_roles(shop, frames)
    log = frames[roles.table]
    items = frames[roles.items][shop.table(roles.items).primary_key].to_numpy()
    split = split_customers(log, roles, seed=args.seed)
    train_frames = {**frames, roles.table: split.train}
    t0 = time.perf_counter()
    model = PurchaseModel().fit(train_frames, shop)
    fit_s = time.perf_counter() - t0
    n_train = split.train[roles.customer].nunique()
    t0 = time.perf_counter()
    synthetic = model.sample(n_train, seed=args.seed)
    sample_s = time.perf_counter() - t0
    out = {"shop": args.shop.name, "train_customers": int(n_train), "held_out_customers": int(split.held_out[roles.customer].nunique()),
           "scored_customers": int(split.target[roles.customer].nunique()), "fit_s": round(fit_s, 1),
           "sample_s": round(sample_s, 1), "synthetic_lines": len(synthetic), "real_train_lines": len(split.train),
           "habits": {k: round(v, 3) for k, v in model.habits_.items()}}
    out["fidelity"] = {"synthetic": fidelity(synthetic, split.held_out, roles, items),
                       "real_train": fidelity(split.train, split.held_out, roles, items)}
    out["recommenders"] = {"synthetic": recommenders(synthetic, split, roles, items, seed=args.seed),
                           "real_train": recommenders(split.train, split, roles, items, seed=args.seed)}
    rng = np.random.default_rng(args.seed)
    few = rng.choice(split.train[roles.customer].unique(), max(1, n_train // 10), replace=False)
    small = split.train[split.train[roles.customer].isin(set(few.tolist()))]
    offset = int(split.train[roles.customer].max()) + 1
    extra = synthetic.assign(**{roles.customer: synthetic[roles.customer] + offset,
                                roles.basket: synthetic[roles.basket] + int(log[roles.basket].max()) + 1})
    out["augmentation"] = {"real_10pct": recommenders(small, split, roles, items, seed=args.seed),
                           "real_10pct_plus_synthetic": recommenders(
                               pd.concat([small, extra], ignore_index=True), split, roles, items,
                               seed=args.seed)}
    out["privacy"] = privacy(synthetic, split, roles)
    out["ratios_by_seed"] = {args.seed: recall_ratios(out["recommenders"])}
    for seed in range(args.seed + 1, args.seed + 1 + args.more_seeds):
        other = split_customers(log, roles, seed=seed)
        fitted = PurchaseModel().fit({**frames, roles.table: other.train}, shop)
        drawn = fitted.sample(other.train[roles.customer].nunique(), seed=seed)
        out["ratios_by_seed"][seed] = recall_ratios({
            "synthetic": recommenders(drawn, other, roles, items, seed=seed),
            "real_train": recommenders(other.train, other, roles, items, seed=seed)})
    if args.scale:  # the whole shop: customers (their own columns drawn, rollups computed), lines, products
        train_customers = frames[roles.customers][frames[roles.customers][shop.table(roles.customers).primary_key]
                                                  .isin(set(split.train[roles.customer]))]
        synth = ShopSynthesizer(shop, FitOptions(tabular="copula", products="real"), show_progress=False).fit(
            {**train_frames, roles.customers: train_customers})
        t0 = time.perf_counter()
        big = synth.sample(args.scale, seed=args.seed + 1).tables
        sampled = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            write_shop(big, Path(tmp) / "shop")
        out["scale"] = {"customers": args.scale, "lines": len(big[roles.table]), "sample_s": round(sampled, 1),
                        "total_s": round(time.perf_counter() - t0, 1)}
    if args.whole:
        out["whole"] = whole_shop(frames, shop, roles, split, args.seed)
    print(json.dumps(out, indent=2))
    (RESULTS / "shop.json").write_text(json.dumps(out, indent=2))
    (RESULTS / "shop.md").write_text(render(out))


def whole_shop(frames: dict[str, pd.DataFrame], shop, roles, split, seed: int) -> dict:
    """A whole new shop from the training customers: customers (copula), new products with their text (copula +
    the fast text model), their lines; validated (every key, every rollup against its lines) and scored by
    `evaluate_shop` against the same hold-out. The tie between a customer's own columns and behaviour is
    measured as SDMetrics' contingency similarity of (categorical column, orders quartile), next to the
    same with the customers' own columns shuffled among them (no placement)."""
    from sdmetrics.column_pairs import ContingencySimilarity

    from shopgen.evaluation.shop_report import evaluate_shop
    from shopgen.validation import validate_shop

    key = shop.table(roles.customers).primary_key
    train_customers = frames[roles.customers][frames[roles.customers][key].isin(set(split.train[roles.customer]))]
    t0 = time.perf_counter()
    synth = ShopSynthesizer(shop, FitOptions(tabular="copula", preset="fast"), show_progress=False).fit(
        {**frames, roles.table: split.train, roles.customers: train_customers})
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    tables, _ = synth.sample(len(train_customers), seed=seed, products="new")
    sample_s = time.perf_counter() - t0
    checked = validate_shop(tables, shop)
    report = evaluate_shop(frames, tables, shop, seed=seed)
    out = {"fit_s": round(fit_s, 1), "sample_s": round(sample_s, 1), "customers": len(tables[roles.customers]),
           "products": len(tables[roles.items]), "lines": len(tables[roles.table]),
           "valid": {t: r.success for t, r in checked.items()},
           "expectations": {t: r.n_expectations for t, r in checked.items()},
           "rollups": [f"{r.table}.{r.column} = {r}" for r in shop.rollups],
           "scores": {k: (round(v, 4) if v == v else None) for k, v in report.scores.items()}}
    counts = [r.column for r in shop.rollups_of(roles.customers) if r.func == "count_distinct"]
    own = [c.name for c in shop.table(roles.customers).columns if c.type == "categorical"]
    if counts and own:
        def tie(frame: pd.DataFrame) -> pd.DataFrame:
            return pd.DataFrame({"own": frame[own[0]].astype(str),
                                 "orders": pd.qcut(frame[counts[0]].rank(method="first"), 4, labels=False).astype(str)})

        held = frames[roles.customers][frames[roles.customers][key].isin(set(split.held_out[roles.customer]))]
        real = tie(held)
        new = tables[roles.customers]
        shuffled = new.assign(**{own[0]: new[own[0]].sample(frac=1, random_state=seed).to_numpy()})
        out["tie"] = {"columns": [own[0], counts[0]], **{
            name: round(float(ContingencySimilarity.compute(real, tie(frame))), 4)
            for name, frame in (("real_train", train_customers), ("placed", new), ("shuffled", shuffled))}}
    return out


def recall_ratios(scores: dict) -> dict[str, float]:
    """recall@20 trained on synthetic over trained on real, per recommender."""
    return {m: round(scores["synthetic"][m]["recall@20"] / max(scores["real_train"][m]["recall@20"], 1e-12), 3)
            for m in scores["synthetic"]}


def render(out: dict) -> str:
    fid, rec, aug, priv = out["fidelity"], out["recommenders"], out["augmentation"], out["privacy"]
    lines = [f"# A synthetic shop's purchase log ({out['shop']})", "",
             f"Purchase model fitted on the log of {out['train_customers']:,} real customers ({out['real_train_lines']:,} "
             f"lines) in {out['fit_s']} s; {out['train_customers']:,} synthetic customers over the real products "
             f"({out['synthetic_lines']:,} lines) sampled in {out['sample_s']} s. Scored against "
             f"{out['held_out_customers']:,} held-out real customers; recommenders on the last basket of the "
             f"{out['scored_customers']:,} of them with two or more baskets. Measured habits: "
             + ", ".join(f"{k} {v}" for k, v in out["habits"].items()) + ".", "",
             "## Fidelity (KS against the held-out customers; lower is closer)", "",
             "| measure | synthetic | real training customers |", "|---|---|---|"]
    for key in fid["synthetic"]:
        lines.append(f"| {key} | {fid['synthetic'][key]:.3f} | {fid['real_train'][key]:.3f} |")
    lines += ["", "## Recommenders: trained on one log, tested on held-out real customers' last baskets", "",
              "| trained on | model | recall@20 | NDCG@20 |", "|---|---|---|---|"]
    for source, table in (("synthetic", rec["synthetic"]), ("real training log", rec["real_train"]),
                          ("10 % of the real log", aug["real_10pct"]),
                          ("10 % + the synthetic customers", aug["real_10pct_plus_synthetic"])):
        for model, s in table.items():
            lines.append(f"| {source} | {model} | {s['recall@20']:.4f} | {s['ndcg@20']:.4f} |")
    lines += ["", "recall@20 trained on synthetic over trained on real, per split and sample seed:", "",
              "| seed | " + " | ".join(rec["synthetic"]) + " |", "|---" * (len(rec["synthetic"]) + 1) + "|"]
    lines += [f"| {seed} | " + " | ".join(f"{v:.2f}" for v in ratios.values()) + " |"
              for seed, ratios in out["ratios_by_seed"].items()]
    lines += ["",
        "## Privacy (share equal to a training customer's product set, or to a training basket)", "",
        "| | synthetic | held-out real |", "|---|---|---|",
        f"| whole product set | {priv['customer_set_copies_synthetic']:.4f} | {priv['customer_set_copies_held_out']:.4f} |",
        f"| basket | {priv['basket_copies_synthetic']:.4f} | {priv['basket_copies_held_out']:.4f} |"]
    if "scale" in out:
        s = out["scale"]
        lines += ["", f"A whole shop of {s['customers']:,} new customers ({s['lines']:,} purchase lines; customers' own "
                  f"columns drawn, rollups computed) sampled in {s['sample_s']} s and written as Parquet in "
                  f"{s['total_s']} s in all, on 2 cores, one process."]
    if "whole" in out:
        w = out["whole"]
        sc = w["scores"]
        lines += ["", "## A whole new shop (new products with their text)", "",
                  f"Fitted on the training customers in {w['fit_s']} s (customers and products: Gaussian copula; "
                  f"product text: the fast text model); {w['customers']:,} customers, {w['products']:,} new products and "
                  f"{w['lines']:,} lines sampled in {w['sample_s']} s. Validation (each table's expectations, every "
                  "foreign key, every rollup recomputed from the lines): "
                  + ", ".join(f"{t} {'passed' if ok else 'FAILED'} ({w['expectations'][t]} expectations)"
                              for t, ok in w["valid"].items()) + ". Rollups: " + "; ".join(w["rollups"]) + ".", "",
                  "| score | synthetic | real reference |", "|---|---|---|"]
        for k in ("ks_baskets_per_customer", "ks_lines_per_basket", "ks_product_popularity", "ks_days_between_baskets",
                  "customers_quality", "products_quality", "cardinality", "intertable_trends"):
            if k in sc:
                ref = sc.get(f"{k}_reference")
                lines.append(f"| {k} | {sc[k]:.3f} | {'' if ref is None else f'{ref:.3f}'} |")
        if "tie" in w:
            t = w["tie"]
            lines += ["", f"A customer's {t['columns'][0]} and their {t['columns'][1]} (quartiles), SDMetrics contingency "
                      f"similarity with the held-out customers (1 = the same joint shares): real training customers "
                      f"{t['real_train']:.3f}; synthetic customers placed by their drawn rollups {t['placed']:.3f}; the same "
                      f"customers with {t['columns'][0]} shuffled among them {t['shuffled']:.3f}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
