"""How alike a synthetic purchase log is to a real one, and whether recommenders trained on it work on real
customers.

- Fidelity: KS distances of baskets per customer, lines per basket, gaps between a customer's baskets and
  product popularity (the lines' products, ranked by the real popularity), the popularity Gini and the
  repeat-purchase share.
- Recommender utility (train on synthetic, test on real): the last basket of each held-out real customer is
  what they will buy; their earlier baskets are what the recommender sees of them. implicit's ALS and
  item-kNN (cosine), and a popularity ranking, are trained on one log and score recall@k (hits over
  min(k, basket size)) and NDCG@k on those baskets. A model never sees a held-out customer in training:
  ALS recomputes their factors from their earlier baskets.
- Privacy: synthetic customers whose whole product set equals a training customer's, and synthetic baskets
  equal to a training basket, next to the same rate for the real held-out customers.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.stats import ks_2samp

from shopgen.purchases import LogRoles


@dataclass(frozen=True)
class Split:
    """Real customers split in two: a training log, and held-out customers' earlier baskets and last basket."""

    train: pd.DataFrame
    held_out: pd.DataFrame  # every line of the held-out customers (for fidelity)
    history: pd.DataFrame  # their lines before their last basket
    target: pd.DataFrame  # their last basket's lines (customers with at least two baskets)


def split_customers(log: pd.DataFrame, roles: LogRoles, share: float = 0.2, seed: int = 0) -> Split:
    customers = log[roles.customer].drop_duplicates().to_numpy()
    rng = np.random.default_rng(seed)
    held = set(rng.choice(customers, int(round(share * len(customers))), replace=False).tolist())
    is_held = log[roles.customer].isin(held)
    held_out = log[is_held]
    order = [roles.time, roles.basket] if roles.time else [roles.basket]
    baskets = held_out.sort_values(order, kind="stable").drop_duplicates(roles.basket)
    last = baskets.groupby(roles.customer)[roles.basket].last()
    several = baskets.groupby(roles.customer)[roles.basket].nunique() >= 2
    last = last[several.reindex(last.index)]
    is_last = held_out[roles.basket].isin(set(last.tolist()))
    with_history = held_out[roles.customer].isin(set(last.index.tolist()))
    return Split(log[~is_held], held_out, held_out[~is_last & with_history], held_out[is_last])


def behaviour(log: pd.DataFrame, roles: LogRoles, items: np.ndarray) -> dict[str, np.ndarray]:
    """The distributions fidelity compares."""
    per_customer = log.groupby(roles.customer)[roles.basket].nunique().to_numpy()
    per_basket = log.groupby(roles.basket).size().to_numpy()
    counts = log[roles.item].astype(str).value_counts().reindex(pd.Index(items).astype(str), fill_value=0).to_numpy()
    out = {"baskets_per_customer": per_customer, "lines_per_basket": per_basket, "product_share": counts / counts.sum()}
    if roles.time:
        moments = pd.to_datetime(log.drop_duplicates(roles.basket).set_index(roles.basket)[roles.time])
        ordered = moments.groupby(log.drop_duplicates(roles.basket).set_index(roles.basket)[roles.customer]).apply(
            lambda m: np.diff(np.sort(m.to_numpy("datetime64[s]").astype(np.int64))))
        out["days_between_baskets"] = np.concatenate([g for g in ordered if len(g)] or [np.zeros(0)]) / 86400
    seen = log.drop_duplicates([roles.customer, roles.item])
    out["repeat_share"] = np.array([1 - len(seen) / max(len(log.drop_duplicates([roles.customer, roles.basket, roles.item])), 1)])
    return out


def gini(shares: np.ndarray) -> float:
    x = np.sort(np.asarray(shares, dtype=float))
    n = len(x)
    return float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * x.sum())) if n and x.sum() else 0.0


def fidelity(synthetic: pd.DataFrame, real: pd.DataFrame, roles: LogRoles, items: np.ndarray) -> dict[str, float]:
    return compare(behaviour(synthetic, roles, items), behaviour(real, roles, items))


def compare(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, float]:
    """Fidelity of behaviour `a` against real behaviour `b` (both from `behaviour`, over the same items), so a
    caller scoring several logs against one hold-out computes each log's behaviour once."""
    out = {f"ks_{k}": float(ks_2samp(a[k], b[k]).statistic) for k in a
           if k not in ("repeat_share", "product_share") and len(a[k]) and len(b[k])}
    # which product a line is, with products ranked by the real popularity: the largest gap between the two
    # popularity curves (a KS over lines, as the other rows are over customers and baskets)
    rank = np.argsort(-b["product_share"], kind="stable")
    out["ks_product_popularity"] = float(np.abs(np.cumsum(a["product_share"][rank] - b["product_share"][rank])).max())
    out["gini"], out["gini_real"] = gini(a["product_share"]), gini(b["product_share"])
    out["repeat_share"], out["repeat_share_real"] = float(a["repeat_share"][0]), float(b["repeat_share"][0])
    return out


def _matrix(log: pd.DataFrame, roles: LogRoles, index: pd.Index, users: pd.Index) -> sp.csr_matrix:
    rows = users.get_indexer(log[roles.customer])
    cols = index.get_indexer(log[roles.item].astype(str))
    keep = (rows >= 0) & (cols >= 0)
    m = sp.csr_matrix((np.ones(int(keep.sum()), dtype=np.float32), (rows[keep], cols[keep])), shape=(len(users), len(index)))
    m.sum_duplicates()
    return m


def recommenders(train: pd.DataFrame, split: Split, roles: LogRoles, items: np.ndarray, k: int = 20,
                 seed: int = 0) -> dict[str, dict[str, float]]:
    """recall@k and NDCG@k of ALS, item-kNN and popularity trained on `train`, on the held-out last baskets."""
    from implicit.als import AlternatingLeastSquares
    from implicit.nearest_neighbours import CosineRecommender
    from threadpoolctl import threadpool_limits

    index = pd.Index(items).astype(str)
    users = pd.Index(train[roles.customer].unique())
    train_m = _matrix(train, roles, index, users)
    held = pd.Index(split.target[roles.customer].unique())
    history = _matrix(split.history, roles, index, held)
    truth = split.target.assign(_item=index.get_indexer(split.target[roles.item].astype(str))).groupby(
        roles.customer)["_item"].apply(lambda s: set(s.tolist()) - {-1}).reindex(held)
    scores = {}
    popular = np.argsort(-np.asarray(train_m.sum(axis=0)).ravel(), kind="stable")[:k]
    scores["popularity"] = _score([popular] * len(held), truth, k)
    knn = CosineRecommender(K=100)
    with warnings.catch_warnings():  # implicit's item-kNN converts its own transposed matrix, and says so
        warnings.filterwarnings("ignore", message="Method expects CSR input")
        knn.fit(train_m, show_progress=False)
    ids, _ = knn.recommend(np.arange(len(held)), history, N=k, filter_already_liked_items=False)
    scores["item_knn"] = _score(ids, truth, k)
    with threadpool_limits(1, "blas"):  # implicit runs its own threads; BLAS's would fight them
        als = AlternatingLeastSquares(factors=64, iterations=15, regularization=0.05, random_state=seed)
        als.fit(train_m, show_progress=False)
    ids, _ = als.recommend(np.arange(len(held)), history, N=k, filter_already_liked_items=False, recalculate_user=True)
    scores["als"] = _score(ids, truth, k)
    return scores


def _score(ranked, truth: pd.Series, k: int) -> dict[str, float]:
    recall, ndcg = [], []
    discounts = 1 / np.log2(np.arange(2, k + 2))
    for row, want in zip(ranked, truth):
        if not want:
            continue
        hits = np.array([int(i) in want for i in list(row)[:k]], dtype=float)
        recall.append(hits.sum() / min(k, len(want)))
        ndcg.append(float(hits @ discounts[:len(hits)]) / float(discounts[:min(k, len(want))].sum()))
    return {f"recall@{k}": float(np.mean(recall)), f"ndcg@{k}": float(np.mean(ndcg))}


def privacy(synthetic: pd.DataFrame, split: Split, roles: LogRoles) -> dict[str, float]:
    """Copies of whole product sets and of baskets, next to the held-out real customers' own rates."""
    def sets(log: pd.DataFrame, by: str) -> pd.Series:
        return log.groupby(by)[roles.item].apply(lambda s: frozenset(s.astype(str)))

    train_customers = set(sets(split.train, roles.customer))
    train_baskets = set(sets(split.train, roles.basket))
    out = {}
    for name, log in (("synthetic", synthetic), ("held_out", split.held_out)):
        out[f"customer_set_copies_{name}"] = float(sets(log, roles.customer).isin(train_customers).mean())
        out[f"basket_copies_{name}"] = float(sets(log, roles.basket).isin(train_baskets).mean())
    return out


def by_popularity_rank(log: pd.DataFrame, roles: LogRoles) -> pd.DataFrame:
    """The log with each product replaced by its popularity rank in this log ('0' the most bought), so two
    logs over different catalogs (new synthetic products) compare by the shapes of their popularity curves."""
    items = log[roles.item].astype(str)
    counts = items.value_counts()
    rank = pd.Series(np.arange(len(counts)).astype(str), index=counts.index)
    return log.assign(**{roles.item: rank.reindex(items).to_numpy()})


def concentration(log: pd.DataFrame, roles: LogRoles, products: pd.DataFrame, key: str, column: str) -> float:
    """Mean over customers of the share of their lines in their most frequent `column` level (a category
    of the product bought): how much customers keep to one kind. Lines join the log's own products table, so
    a log over new products is scored by the new products' categories."""
    from shopgen.rollups import key_strings

    level = products[column].astype(object).where(products[column].notna(), "(missing)")
    by_key = pd.Series(level.to_numpy(), index=key_strings(products[key]).reindex(products.index).to_numpy())
    by_key = by_key[~by_key.index.duplicated()]
    lines = pd.DataFrame({"customer": log[roles.customer].to_numpy(),
                          "level": by_key.reindex(key_strings(log[roles.item]).reindex(log.index)).to_numpy()})
    counts = lines.dropna().groupby(["customer", "level"]).size()
    if not len(counts):
        return float("nan")
    per_customer = counts.groupby(level=0)
    return float((per_customer.max() / per_customer.sum()).mean())
