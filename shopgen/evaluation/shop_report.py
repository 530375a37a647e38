"""`evaluate_shop(real, synthetic, shop)`: one offline report on a whole synthetic shop.

The hold-out. The real customers are split (`split_customers`, seeded): a share of them, with all their
lines, is the hold-out: real customers to compare against and to test recommenders on. Every score sits
next to a real reference, so a number reads against what real data reaches:
- `<name>_reference`: the same score with real data in place of the synthetic data (the real training
  customers against the hold-out, recommenders trained on the real training log, the hold-out's own table
  quality, DCR and copy rates against the training customers);
- `<name>_real`: where a score is a level rather than a distance (a Gini, a share), the hold-out's own value.
The hold-out is exact when the synthesizer was fitted on the training customers only; fitted on the whole
real shop, the hold-out customers were seen in training and privacy scores understate closeness.

Products. When most synthetic lines point at real product keys the synthetic log is over the real catalog:
fidelity ranks products by the hold-out's popularity, and recommenders trained on the synthetic log are
tested on real customers. When the products are new, popularity curves are compared by each log's own
ranking, the synthetic products table is scored against the real one, and there is no recommender utility
or product-set copying to score (the keys differ); `meta["notes"]` says so.
"""

from __future__ import annotations

import contextlib
import io
import re
import time
import warnings
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from shopgen.errors import ShopgenError
from shopgen.evaluation.report import ScoreReport, finite
from shopgen.purchases import LogRoles, log_roles
from shopgen.shop_schema import ShopSchema

MAX_RELATIONAL_CUSTOMERS = 1_000  # customers (and their lines) SDMetrics' multi-table report runs on
REAL_CATALOG_SHARE = 0.5  # a synthetic log with more of its lines on real product keys is over the real catalog
MIN_HOLDOUT_CUSTOMERS = 5
MODELS = ("als", "item_knn", "popularity")
BINS = 30
HEADLINE = ["ks_product_popularity", "ks_baskets_per_customer", "item_knn_recall_ratio", "als_recall_ratio",
            "customers_quality", "products_quality", "cardinality", "intertable_trends", "customer_set_copies",
            "customers_dcr_share"]
SECTIONS = {"fidelity": "Purchase behaviour: synthetic log vs held-out real customers",
            "behaviour": "Category concentration per customer",
            "utility": "Recommenders: train on synthetic, test on real",
            "tables": "Table quality", "relational": "Relationships (SDMetrics multi-table)", "privacy": "Privacy"}

# (key pattern, section, better, sentence), as shopgen.evaluation.scores does for one catalog; per-table keys
# (customers_*, products_*) take the catalog's sentence for the rest of the key.
SHOP_SCORE_INFO: list[tuple[str, str, str, str]] = [
    (r"ks_baskets_per_customer", "fidelity", "lower", "KS distance of the numbers of baskets per customer."),
    (r"ks_lines_per_basket", "fidelity", "lower", "KS distance of the numbers of lines per basket."),
    (r"ks_days_between_baskets", "fidelity", "lower", "KS distance of the days between a customer's baskets."),
    (r"ks_product_popularity", "fidelity", "lower",
     "Largest gap between the two popularity curves: lines' products ranked by the hold-out's popularity "
     "(by each log's own popularity when the products are new)."),
    (r"gini", "fidelity", "real", "Gini of product popularity: how concentrated lines are on a few products."),
    (r"repeat_share", "fidelity", "real", "Share of lines buying a product the customer bought in another basket."),
    (r"concentration_(.+)", "behaviour", "real",
     "Mean share of a customer's lines in their most frequent {0} (lines joined to their own products table)."),
    (r"(\w+?)_(recall|ndcg)@(\d+)", "utility", "higher",
     "{1}@{2} of {0} trained on this log, on held-out customers' last baskets (their earlier ones as input)."),
    (r"(\w+?)_(recall|ndcg)_ratio", "utility", "higher",
     "{1} of {0} trained on the synthetic log over trained on the real training log: 1 means it teaches as much."),
    (r"cardinality", "relational", "higher",
     "SDMetrics Cardinality: how alike the numbers of lines per customer and per product are (averaged over "
     "foreign keys), on a seeded sample of customers against as many real training customers."),
    (r"intertable_trends", "relational", "higher",
     "SDMetrics Intertable Trends: how alike the trends between a line's columns and its customer's and "
     "product's columns are."),
    (r"customer_set_copies", "privacy", "lower", "Share of customers whose whole product set equals a training customer's."),
    (r"basket_copies", "privacy", "lower", "Share of baskets equal to a training basket."),
]
BETTER = {"higher": "higher ↑", "lower": "lower ↓", "half": "0.5 ideal", "real": "close to real"}


def describe(key: str) -> tuple[str, str, str]:
    """(section, which way is better, one sentence) for a shop score key, its `_reference` / `_real` too."""
    from shopgen.evaluation import scores as catalog

    base = re.sub(r"_(reference|real)$", "", key)
    for role in ("customers", "products"):
        if base.startswith(role + "_"):
            section, better, sentence = catalog.describe(base[len(role) + 1:])
            return ("privacy" if section == "privacy" else "tables"), better, f"{role} table: {sentence}"
    for pattern, section, better, sentence in SHOP_SCORE_INFO:
        m = re.fullmatch(pattern, base)
        if m:
            return section, better, sentence.format(*m.groups())
    return "other", "higher", ""


@dataclass
class ShopReport(ScoreReport):
    """`scores` is flat (name -> float, NaN when not computable); `to_html` / `to_json` write it out."""

    scores: dict[str, float]
    meta: dict[str, Any]
    headline: ClassVar[list[str]] = HEADLINE
    details: dict[str, Any] = field(default_factory=dict)  # what the page draws (distributions, per-model scores)

    def to_html(self, path: str | Path) -> Path:
        from shopgen.sinks import write_text

        return write_text(render(self), path)

    @property
    def sizes(self) -> dict[str, int]:
        """How many customers each side had: train, held_out, scored_last_basket, synthetic."""
        return self.meta["customers"]

    def counts(self) -> str:
        c = self.sizes
        return (f"{c['synthetic']} synthetic customers against {c['train']} training and {c['held_out']} "
                "hold-out customers")

    def summary(self) -> str:
        """One paragraph: the headline scores, each beside its real reference."""
        s, m = self.scores, self.meta
        rows = m["customers"]
        parts = [f"{rows['synthetic']:,} synthetic customers ({m['lines']['synthetic']:,} lines, "
                 f"{'real' if m['products'] == 'real' else 'new'} products) against {rows['held_out']:,} held-out "
                 f"real customers."]
        ks = [f"{name.replace('ks_', '').replace('_', ' ')} {_fmt(s[name])} (real sample {_fmt(s.get(name + '_reference'))})"
              for name in ("ks_product_popularity", "ks_baskets_per_customer", "ks_lines_per_basket") if name in s]
        if ks:
            parts.append("Behaviour KS: " + ", ".join(ks) + ".")
        ratios = [f"{model.replace('_', '-')} {s[f'{model}_recall_ratio']:.0%}" for model in MODELS
                  if finite(s.get(f"{model}_recall_ratio"))]
        if ratios:
            parts.append(f"Recommenders trained on the synthetic log reach, of the recall@{m['k']} they reach "
                         f"trained on the real log: " + ", ".join(ratios) + ".")
        tables = [f"{role} quality {_fmt(s[f'{role}_quality'])}"
                  + (f" (hold-out {_fmt(s[f'{role}_quality_reference'])})" if f"{role}_quality_reference" in s else "")
                  for role in ("customers", "products") if f"{role}_quality" in s]
        tables += [f"{name.replace('_', ' ')} {_fmt(s[name])} (hold-out {_fmt(s.get(name + '_reference'))})"
                   for name in ("cardinality", "intertable_trends") if name in s]
        if tables:
            parts.append("SDMetrics: " + ", ".join(tables) + ".")
        if "customer_set_copies" in s:
            parts.append(f"{s['customer_set_copies']:.2%} of customers copy a training customer's product set "
                         f"(hold-out {s['customer_set_copies_reference']:.2%}); {s['basket_copies']:.2%} of baskets "
                         f"copy a training basket (hold-out {s['basket_copies_reference']:.2%}).")
        if finite(s.get("customers_dcr_share")):
            parts.append(f"Customers DCR share {s['customers_dcr_share']:.2f} (0.5 is what unseen real customers give).")
        parts += m["notes"]
        return " ".join(parts)


def shop_score_names(shop: ShopSchema, k: int = 20, frames: dict[str, pd.DataFrame] | None = None) -> list[str]:
    """Every score `evaluate_shop` can report for this shop (utility ones only over the real catalog, products
    table ones only over new products), so a gate naming another can be refused before any work. Which of the
    log's two parents is the customers is read from the data (`frames`, the log is enough); without it, the
    names for either way round are listed."""
    from shopgen.evaluation import scores as catalog

    logs = [t for t, _ in shop.baskets if len(shop.keys_of(t)) == 2]
    if len(logs) != 1:
        raise ShopgenError(f"shop {shop.name!r} needs exactly one purchase log (a table with a basket column and two "
                           f"foreign keys, to customers and to products); it has {len(logs)}")
    if frames is not None:
        roles = log_roles(shop, frames)
        pairs = [(roles.customers, roles.items)]
    else:
        first, second = (fk.parent for fk in shop.keys_of(logs[0]))
        pairs = [(first, second), (second, first)]
    names = [f"ks_{m}" for m in ("baskets_per_customer", "lines_per_basket", "product_popularity")]
    if any(c.type == "datetime" for c in shop.table(logs[0]).columns):
        names.append("ks_days_between_baskets")
    names = [n for name in names for n in (name, f"{name}_reference")]
    names += [f"{name}{suffix}" for name in ("gini", "repeat_share") for suffix in ("", "_real", "_reference")]
    names += [f"concentration_{c.name}{suffix}" for _, products in pairs for c in shop.table(products).of_type("categorical")
              for suffix in ("", "_real", "_reference")]
    for model in MODELS:
        names += [f"{model}_{metric}@{k}{suffix}" for metric in ("recall", "ndcg") for suffix in ("", "_reference")]
        names += [f"{model}_recall_ratio", f"{model}_ndcg_ratio"]
    for customers, products in pairs:
        for name in catalog.possible_names(shop.table(customers)):
            section = catalog.describe(name)[0]
            if section == "tabular" or (section == "privacy" and not name.startswith("copy_")):
                names.append(f"customers_{_renamed(name)}")
        names += [f"products_{_renamed(name)}" for name in catalog.possible_names(shop.table(products))
                  if catalog.describe(name)[0] == "tabular" and _product_keeps(name)]
    names += [f"{name}{suffix}" for name in ("cardinality", "intertable_trends") for suffix in ("", "_reference")]
    names += [f"{name}{suffix}" for name in ("customer_set_copies", "basket_copies") for suffix in ("", "_reference")]
    return list(dict.fromkeys(names))


def _product_keeps(name: str) -> bool:
    """The products table has no hold-out: its `_real` scores are kept only where they are the real table's
    own level (rule breaks, failed expectations, prices on the grid), not a comparison with itself."""
    return not name.endswith("_real") or name.startswith(("rule_violations", "invalid_rows", "grid_share_"))


def evaluate_shop(real: dict[str, pd.DataFrame], synthetic: dict[str, pd.DataFrame], shop: ShopSchema, *,
                  holdout: float = 0.2, seed: int = 0, k: int = 20) -> ShopReport:
    """Score a synthetic shop against the real one (see the module docstring for the hold-out and products)."""
    from shopgen.evaluation import shop as metrics

    t_start = time.perf_counter()
    if not 0 < holdout < 1:
        raise ShopgenError(f"hold-out share {holdout} is outside (0, 1); use e.g. 0.2")
    missing = [t for t in shop.names if not isinstance(real.get(t), pd.DataFrame)]
    if missing:
        raise ShopgenError(f"the real shop lacks table(s) {missing} (pandas DataFrames) of shop {shop.name!r}")
    roles = log_roles(shop, real)
    real = _frames(real, shop, roles, "real")
    if roles.items not in synthetic:  # a synthetic shop over the real catalog may leave the products out
        synthetic = {**synthetic, roles.items: real[roles.items]}
    synthetic = _frames(synthetic, shop, roles, "synthetic")
    log, synth_log = real[roles.table], synthetic[roles.table]
    split = metrics.split_customers(log, roles, share=holdout, seed=seed)
    n_held = split.held_out[roles.customer].nunique()
    if n_held < MIN_HOLDOUT_CUSTOMERS or split.train[roles.customer].nunique() < MIN_HOLDOUT_CUSTOMERS:
        raise ShopgenError(f"a {holdout:.0%} hold-out of {log[roles.customer].nunique()} customers leaves {n_held} "
                           f"held out; give at least {2 * MIN_HOLDOUT_CUSTOMERS} customers or change the share")
    pkey = shop.table(roles.items).primary_key
    real_keys = set(real[roles.items][pkey])
    on_real = float(synth_log[roles.item].isin(real_keys).mean()) if len(synth_log) else 0.0
    products = "real" if on_real > REAL_CATALOG_SHARE else "new"
    notes: list[str] = []
    scores: dict[str, float] = {}
    seconds: dict[str, float] = {}
    details: dict[str, Any] = {}

    t = time.perf_counter()
    if products == "real":
        items = real[roles.items][pkey].to_numpy()
        logs = {"synthetic": synth_log, "held_out": split.held_out, "train": split.train}
    else:
        notes.append(f"The synthetic products are new ({on_real:.0%} of synthetic lines point at a real product): "
                     "popularity is compared by each log's own ranking, the products table is scored against the "
                     "real one, and there is no recommender utility or product-set copying to score.")
        logs = {"synthetic": metrics.by_popularity_rank(synth_log, roles),
                "held_out": metrics.by_popularity_rank(split.held_out, roles),
                "train": metrics.by_popularity_rank(split.train, roles)}
        items = np.arange(max(len(real_keys), len(synthetic[roles.items]),
                              *(lg[roles.item].nunique() for lg in logs.values()))).astype(str)
    seen = {name: metrics.behaviour(lg, roles, items) for name, lg in logs.items()}
    fid = metrics.compare(seen["synthetic"], seen["held_out"])
    ref = metrics.compare(seen["train"], seen["held_out"])
    scores.update(fid)
    scores.update({f"{name}_reference": v for name, v in ref.items() if not name.endswith("_real")})
    details["behaviour"] = {name: {key: b[key] for key in ("baskets_per_customer", "lines_per_basket",
                                                           "days_between_baskets") if key in b}
                            for name, b in seen.items()}
    seconds["fidelity"] = time.perf_counter() - t

    t = time.perf_counter()
    real_products = real[roles.items]
    for col in shop.table(roles.items).of_type("categorical"):
        scores[f"concentration_{col.name}"] = metrics.concentration(synth_log, roles, synthetic[roles.items], pkey, col.name)
        scores[f"concentration_{col.name}_real"] = metrics.concentration(split.held_out, roles, real_products, pkey, col.name)
        scores[f"concentration_{col.name}_reference"] = metrics.concentration(split.train, roles, real_products, pkey, col.name)
    seconds["concentration"] = time.perf_counter() - t

    t = time.perf_counter()
    if products == "real" and split.target[roles.customer].nunique() >= MIN_HOLDOUT_CUSTOMERS:
        trained_synth = metrics.recommenders(synth_log, split, roles, items, k=k, seed=seed)
        trained_real = metrics.recommenders(split.train, split, roles, items, k=k, seed=seed)
        for model in MODELS:
            for metric in ("recall", "ndcg"):
                s, r = trained_synth[model][f"{metric}@{k}"], trained_real[model][f"{metric}@{k}"]
                scores[f"{model}_{metric}@{k}"], scores[f"{model}_{metric}@{k}_reference"] = s, r
                scores[f"{model}_{metric}_ratio"] = s / r if r > 0 else float("nan")
        details["recommenders"] = {"synthetic": trained_synth, "real": trained_real}
    elif products == "real":
        notes.append(f"Fewer than {MIN_HOLDOUT_CUSTOMERS} held-out customers have two or more baskets: no "
                     "recommender utility is scored.")
    seconds["recommenders"] = time.perf_counter() - t

    customers = real[roles.customers]
    ckey = shop.table(roles.customers).primary_key
    train_customers = customers[customers[ckey].isin(set(split.train[roles.customer]))].reset_index(drop=True)
    held_customers = customers[customers[ckey].isin(set(split.held_out[roles.customer]))].reset_index(drop=True)
    t = time.perf_counter()
    details["tables"] = _table_quality(shop, roles, train_customers, held_customers, real, synthetic, products, scores)
    seconds["tables"] = time.perf_counter() - t

    t = time.perf_counter()
    m = min(MAX_RELATIONAL_CUSTOMERS, len(train_customers), len(held_customers), len(synthetic[roles.customers]))
    rng = np.random.default_rng(seed)
    sides = {name: _customer_sample(frames, roles, ckey, m, rng) for name, frames in (
        ("train", {**real, roles.customers: train_customers}), ("synthetic", synthetic),
        ("held_out", {**real, roles.customers: held_customers}))}
    details["relational"] = _relational(shop, roles, sides, scores)
    seconds["relational"] = time.perf_counter() - t

    t = time.perf_counter()
    if products == "real":
        for name, v in metrics.privacy(synth_log, split, roles).items():
            scores[name.replace("_synthetic", "").replace("_held_out", "_reference")] = v
    from shopgen.evaluation.privacy import privacy_scores

    priv, distances = privacy_scores(train_customers, held_customers, synthetic[roles.customers],
                                     shop.table(roles.customers), seed)
    scores.update({f"customers_{_renamed(name)}": v for name, v in priv.items()})
    details["distances"] = distances
    seconds["privacy"] = time.perf_counter() - t

    seconds["total"] = time.perf_counter() - t_start
    meta = {
        "shop": shop.name, "products": products, "k": k, "seed": seed,
        "holdout": f"{holdout:.0%} of the real customers (seed {seed})",
        "customers": {"train": int(split.train[roles.customer].nunique()), "held_out": int(n_held),
                      "scored_last_basket": int(split.target[roles.customer].nunique()),
                      "synthetic": int(len(synthetic[roles.customers])), "relational_sample": int(m)},
        "lines": {"train": len(split.train), "held_out": len(split.held_out), "synthetic": len(synth_log)},
        "synthetic_lines_on_real_products": round(on_real, 4), "notes": notes,
        "seconds": {name: round(v, 2) for name, v in seconds.items()}, "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    return ShopReport({name: float(v) for name, v in scores.items()}, meta, details)


def _renamed(name: str) -> str:
    """A catalog score's name in the shop report: its hold-out value is the `_reference`."""
    return name[:-5] + "_reference" if name.endswith("_real") else name


def _frames(frames: dict[str, pd.DataFrame], shop: ShopSchema, roles: LogRoles, source: str) -> dict[str, pd.DataFrame]:
    """The three tables in their schema's columns, keys as the text keys compare by (17850.0 is 17850)."""
    from shopgen.rollups import key_strings

    out = {}
    for table in (roles.customers, roles.items, roles.table):
        if table not in frames or not isinstance(frames[table], pd.DataFrame):
            raise ShopgenError(f"the {source} shop has no table {table!r} (a pandas DataFrame); it has {sorted(frames)}")
        schema = shop.table(table)
        df = schema.check_frame(frames[table], source=f"{source} table {table!r}").reset_index(drop=True)
        keys = [schema.primary_key] if schema.primary_key else []
        keys += [fk.column for fk in shop.keys_of(table)] + ([shop.basket(table)] if shop.basket(table) else [])
        for key in keys:
            if key:
                df[key] = key_strings(df[key]).reindex(df.index).to_numpy(dtype=object)
        out[table] = df
    return out


def _table_quality(shop: ShopSchema, roles: LogRoles, train_customers: pd.DataFrame, held_customers: pd.DataFrame,
                   real: dict[str, pd.DataFrame], synthetic: dict[str, pd.DataFrame], products: str,
                   scores: dict[str, float]) -> dict[str, Any]:
    """SDMetrics quality (and the rest of the catalog report's tabular scores) of the customers table, and of
    the products table when they are new; the hold-out customers' own scores are the customers' reference."""
    from shopgen.evaluation.tabular import tabular_scores

    out = {}
    tab = tabular_scores(train_customers, held_customers, synthetic[roles.customers], shop.table(roles.customers))
    scores.update({f"customers_{_renamed(name)}": v for name, v in tab.scores.items()})
    out["customers"] = tab
    if products == "new":
        tab = tabular_scores(real[roles.items], real[roles.items], synthetic[roles.items], shop.table(roles.items))
        scores.update({f"products_{_renamed(name)}": v for name, v in tab.scores.items() if _product_keeps(name)})
        out["products"] = tab
    return out


def _customer_sample(frames: dict[str, pd.DataFrame], roles: LogRoles, key: str, m: int,
                     rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    """`m` customers drawn from the frames' customers table, their lines and every product."""
    customers = frames[roles.customers]
    chosen = customers.iloc[np.sort(rng.choice(len(customers), m, replace=False))].reset_index(drop=True)
    log = frames[roles.table]
    lines = log[log[roles.customer].isin(set(chosen[key]))].reset_index(drop=True)
    return {roles.customers: chosen, roles.items: frames[roles.items], roles.table: lines}


def relational_metadata(shop: ShopSchema, roles: LogRoles) -> dict:
    """SDMetrics multi-table metadata for the customers, products and log: the tabular columns of each (as the
    catalog report declares them), every key as an id, and the log's two foreign keys as relationships."""
    from shopgen.evaluation.tabular import TABLE, metadata

    tables = {}
    for name in (roles.customers, roles.items, roles.table):
        table = metadata(shop.table(name))["tables"][TABLE]
        for column in [fk.column for fk in shop.keys_of(name)] + [shop.basket(name)]:
            if column:
                table["columns"][column] = {"sdtype": "id"}
        tables[name] = table
    relationships = [{"parent_table_name": fk.parent, "parent_primary_key": shop.table(fk.parent).primary_key,
                      "child_table_name": fk.table, "child_foreign_key": fk.column} for fk in shop.keys_of(roles.table)]
    return {"tables": tables, "relationships": relationships}


def _relational(shop: ShopSchema, roles: LogRoles, sides: dict[str, dict[str, pd.DataFrame]],
                scores: dict[str, float]) -> dict[str, pd.DataFrame]:
    """SDMetrics' multi-table QualityReport of the synthetic sample, and of the held-out sample (the
    reference), each against the real training sample; its Cardinality and Intertable Trends properties."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the module warns at import that SDV's own report supersedes it
        from sdmetrics.reports.multi_table import QualityReport

    md = relational_metadata(shop, roles)
    frames = {name: {t: side[t][list(md["tables"][t]["columns"])] for t in md["tables"]} for name, side in sides.items()}
    details = {}
    for name, suffix in (("synthetic", ""), ("held_out", "_reference")):
        report = QualityReport()
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            report.generate(frames["train"], frames[name], md, verbose=False)
        props = report.get_properties()
        found = dict(zip(props["Property"], props["Score"]))
        scores[f"cardinality{suffix}"] = float(found.get("Cardinality", np.nan))
        scores[f"intertable_trends{suffix}"] = float(found.get("Intertable Trends", np.nan))
        details[name] = report.get_details("Cardinality")
    return details


# ---- the page -------------------------------------------------------------------------------------------
def _fmt(v: Any) -> str:
    return f"{float(v):.3f}" if finite(v) else "n/a"


def _img(svg_text: str, alt: str) -> str:
    from shopgen.evaluation import svg

    return f"<img class='plot' alt='{escape(alt)}' src='{svg.data_uri(svg_text)}'>"


def _distribution_plot(title: str, real: np.ndarray, synthetic: np.ndarray, xlabel: str) -> str:
    """Held-out vs synthetic histogram; on a log axis (ticks in the original units) for counts with a long tail."""
    from shopgen.evaluation import svg

    r, s = np.asarray(real, dtype=float), np.asarray(synthetic, dtype=float)
    both = np.concatenate([r, s, [0.0]])
    log = both.min() >= 0 and len(r) and both.max() > 10 * max(np.median(r), 1)
    if log:
        r, s, both = np.log10(1 + r), np.log10(1 + s), np.log10(1 + both)
    hi = float(both.max()) or 1.0
    edges = np.linspace(0.0, hi, BINS + 1)
    shares = [np.histogram(x, edges)[0] / max(len(x), 1) for x in (r, s)]
    return svg.histogram(edges.tolist(), [("real hold-out", shares[0].tolist(), svg.REAL),
                                          ("synthetic", shares[1].tolist(), svg.SYNTH)], title,
                         xlabel=xlabel + (" (log scale)" if log else ""), ticks=(10 ** edges - 1).tolist() if log else None)


def _score_rows(report: ShopReport, section: str) -> str:
    rows = []
    for key, value in report.scores.items():
        if key.endswith(("_reference", "_real")):
            continue
        sec, better, sentence = describe(key)
        if sec != section:
            continue
        cells = "".join(f"<td class='num'>{_fmt(report.scores[key + suffix]) if key + suffix in report.scores else '—'}</td>"
                        for suffix in ("_reference", "_real"))
        rows.append(f"<tr><td><code>{escape(key)}</code></td><td class='num'>{_fmt(value)}</td>{cells}"
                    f"<td>{BETTER.get(better, better)}</td><td>{escape(sentence)}</td></tr>")
    if not rows:
        return "<p class='muted'>No scores in this section for this shop.</p>"
    return ("<table><tr><th>score</th><th>synthetic</th><th>real reference</th><th>hold-out value</th><th>better</th>"
            "<th>what it means</th></tr>" + "".join(rows) + "</table>")


def _fidelity_plots(report: ShopReport) -> str:
    seen = report.details.get("behaviour") or {}
    if "synthetic" not in seen:
        return ""
    plots = [_img(_distribution_plot(title, seen["held_out"][key], seen["synthetic"][key], xlabel), title)
             for key, title, xlabel in (("baskets_per_customer", "Baskets per customer", "baskets"),
                                        ("lines_per_basket", "Lines per basket", "lines"),
                                        ("days_between_baskets", "Days between a customer's baskets", "days"))
             if key in seen["synthetic"] and len(seen["synthetic"][key]) and len(seen["held_out"][key])]
    return "<div class='plots'>" + "".join(plots) + "</div>"


def _utility(report: ShopReport) -> str:
    from shopgen.evaluation import svg

    recs = report.details.get("recommenders")
    if not recs:
        return "".join(f"<p class='muted'>{escape(n)}</p>" for n in report.meta["notes"]) or \
            "<p class='muted'>No recommender utility for this shop.</p>"
    k = report.meta["k"]
    recall = f"recall@{k}"
    rows = "".join(
        f"<tr><td>{escape(model)}</td><td class='num'>{_fmt(recs['synthetic'][model][recall])}</td>"
        f"<td class='num'>{_fmt(recs['real'][model][recall])}</td>"
        f"<td class='num'>{_fmt(report.scores.get(f'{model}_recall_ratio'))}</td>"
        f"<td class='num'>{_fmt(recs['synthetic'][model][f'ndcg@{k}'])}</td>"
        f"<td class='num'>{_fmt(recs['real'][model][f'ndcg@{k}'])}</td></tr>" for model in MODELS)
    chart = svg.bars(list(MODELS), [("trained on real", [recs["real"][m][recall] for m in MODELS], svg.REAL),
                                    ("trained on synthetic", [recs["synthetic"][m][recall] for m in MODELS], svg.SYNTH)],
                     f"{recall} on held-out last baskets", axis=recall)
    return (f"<p>Each model is trained on one log and recommends {k} products to each of the "
            f"{report.meta['customers']['scored_last_basket']:,} held-out customers with two or more baskets, from "
            "their earlier baskets; a hit is a product of their last basket.</p>"
            f"<table><tr><th>model</th><th>{recall} synthetic</th><th>{recall} real</th><th>ratio</th>"
            f"<th>NDCG@{k} synthetic</th><th>NDCG@{k} real</th></tr>{rows}</table>"
            + _img(chart, f"{recall} of each recommender") + _score_rows(report, "utility"))


def _relational_details(report: ShopReport) -> str:
    found = report.details.get("relational") or {}
    if "synthetic" not in found:
        return ""
    syn, ref = found["synthetic"], found["held_out"]
    rows = "".join(f"<tr><td>{escape(str(c))} ({escape(str(f))}) → {escape(str(p))}</td><td class='num'>{_fmt(s)}</td>"
                   f"<td class='num'>{_fmt(r)}</td></tr>"
                   for c, f, p, s, r in zip(syn["Child Table"], syn["Foreign Key"], syn["Parent Table"], syn["Score"],
                                            ref["Score"]))
    return ("<table><tr><th>relationship</th><th>cardinality (synthetic)</th><th>cardinality (real hold-out)</th></tr>"
            f"{rows}</table>")


def _privacy_plot(report: ShopReport) -> str:
    from shopgen.evaluation import svg

    dist = report.details.get("distances") or {}
    d_syn, d_real = dist.get("synthetic"), dist.get("real")
    if d_syn is None or d_real is None or not len(d_syn) or not len(d_real) or not np.isfinite(d_real).all():
        return ""
    hi = float(np.percentile(np.concatenate([d_syn, d_real]), 99)) or 1.0
    edges = np.linspace(0, hi, BINS + 1)
    share = [np.histogram(np.clip(x, 0, hi), edges)[0] / len(x) for x in (d_real, d_syn)]
    return _img(svg.histogram(edges.tolist(), [("real hold-out", share[0].tolist(), svg.REAL),
                                               ("synthetic", share[1].tolist(), svg.SYNTH)],
                              "Customers: distance to the nearest training customer",
                              xlabel="distance (rank / one-hot units)"), "distance to closest record histogram")


def render(report: ShopReport) -> str:
    """The whole page: one self-contained HTML file (plots are embedded SVG), like the catalog report's."""
    from shopgen.evaluation.html import CSS

    meta, scores = report.meta, report.scores
    cards = []
    for key in HEADLINE:
        if key in scores:
            _, better, sentence = describe(key)
            ref = scores.get(f"{key}_reference")
            cards.append(f"<div class='card' title='{escape(sentence)}'><span>{escape(key)}</span>"
                         f"<b>{_fmt(scores[key])}</b><span>{BETTER.get(better, better)}"
                         f"{f' · real {_fmt(ref)}' if ref is not None else ''}</span></div>")
    c, lines = meta["customers"], meta["lines"]
    seconds = ", ".join(f"{k} {v:.1f}s" for k, v in meta["seconds"].items())
    notes = "".join(f"<p><b>Note.</b> {escape(n)}</p>" for n in meta["notes"])
    body = {
        "fidelity": _score_rows(report, "fidelity") + _fidelity_plots(report),
        "behaviour": _score_rows(report, "behaviour") if any(k.startswith("concentration_") for k in scores)
        else "<p class='muted'>The products table has no categorical column.</p>",
        "utility": _utility(report),
        "tables": _score_rows(report, "tables"),
        "relational": (f"<p class='muted'>On {c['relational_sample']:,} customers of each side (seeded) and their "
                       "lines, against as many real training customers.</p>"
                       + _score_rows(report, "relational") + _relational_details(report)),
        "privacy": _score_rows(report, "privacy") + _privacy_plot(report),
    }
    sections = "".join(f"<h2 id='{key}'>{escape(title)}</h2>{body[key]}" for key, title in SECTIONS.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>shopgen shop evaluation: {escape(meta['shop'])}</title>
<style>{CSS}</style></head><body>
<h1>Synthetic shop report: {escape(meta['shop'])}</h1>
<p class="muted">{c['synthetic']:,} synthetic customers ({lines['synthetic']:,} lines, {meta['products']} products)
against {c['held_out']:,} held-out real customers ({lines['held_out']:,} lines) and {c['train']:,} real training
customers (hold-out: {escape(meta['holdout'])}). {escape(meta['date'])}. Took {seconds}.</p>
<div class="cards">{''.join(cards)}</div>
<p class="muted">Each score sits beside its real reference: the same score with real data the synthesizer never
saw in place of the synthetic data (real training customers against the hold-out, a recommender trained on the
real log, the hold-out's own quality). That is the level real data reaches. The hold-out is exact when the
synthesizer was fitted on the training customers only.</p>{notes}
{sections}
<p class="muted">Written by shopgen evaluate. Scores: SDMetrics (table quality, cardinality, intertable trends),
implicit (ALS, item-kNN), shopgen.evaluation. All numbers are also in the JSON report.</p>
</body></html>
"""
