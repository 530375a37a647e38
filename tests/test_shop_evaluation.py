"""The whole-shop evaluation: every score beside its real reference, logs that copy real customers scoring as
the real training log does, random products scoring worse, new products scored by their own catalog, and a
page, a JSON file and gates a pipeline can use."""

from __future__ import annotations

import base64
import json
import math
import re
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_DATA
from test_shop_synthesizer import shop_frames

from shopgen.errors import ShopgenError
from shopgen.evaluation.gates import check_names
from shopgen.evaluation.shop import split_customers
from shopgen.evaluation.shop_report import evaluate_shop, shop_score_names
from shopgen.options import FitOptions
from shopgen.purchases import log_roles
from shopgen.shop_inference import infer_shop
from shopgen.shop_synthesizer import ShopSynthesizer

QUICK = FitOptions(tabular="copula", text_epochs=1, max_train_minutes=1)
CATEGORIES = ["kitchen", "garden", "toys", "books", "lamps"]


def category_shop(n_customers: int = 400, n_products: int = 120, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Customers who keep to a favourite category, buy a few products far more than the rest (Zipf) and buy
    again what they bought before: the structure a recommender learns and random products lack."""
    rng = np.random.default_rng(seed)
    skus = np.array([f"S{i:04d}" for i in range(n_products)])
    category = np.array([CATEGORIES[i % len(CATEGORIES)] for i in range(n_products)])
    products = pd.DataFrame({"sku": skus, "category": category, "price": rng.uniform(2, 60, n_products).round(2)})
    weight = 1 / (1 + rng.permutation(n_products)) ** 1.1
    customers = pd.DataFrame({"customer_id": np.arange(1, n_customers + 1),
                              "region": rng.choice(["north", "south", "east", "west"], n_customers)})
    lines, order = [], 50_000
    start = pd.Timestamp("2024-01-01")
    for customer in customers["customer_id"]:
        favourite = category == rng.choice(CATEGORIES)
        p_fav = weight * favourite / (weight * favourite).sum()
        history: list[int] = []
        day = int(rng.integers(0, 200))
        for _ in range(int(rng.integers(1, 7))):
            order += 1
            day += int(rng.integers(1, 40))
            bought = []
            for _ in range(int(rng.integers(2, 7))):
                if history and rng.random() < 0.3:
                    item = history[int(rng.integers(len(history)))]
                else:
                    item = int(rng.choice(n_products, p=p_fav if rng.random() < 0.85 else weight / weight.sum()))
                bought.append(item)
                lines.append({"customer_id": int(customer), "sku": skus[item], "order_no": order,
                              "ordered_at": (start + pd.Timedelta(days=day)).strftime("%Y-%m-%d %H:%M:%S"),
                              "quantity": int(rng.integers(1, 4))})
            history += bought
    return {"customers": customers, "products": products, "order_lines": pd.DataFrame(lines)}


@pytest.fixture(scope="module")
def categories():
    frames = category_shop()
    shop = infer_shop(frames).schema
    assert shop.table("products").column("category").type == "categorical"
    roles = log_roles(shop, frames)
    assert (roles.customer, roles.item, roles.basket, roles.time) == ("customer_id", "sku", "order_no", "ordered_at")
    return frames, shop, roles


def _copied_and_random(frames, roles, seed=0):
    """A synthetic shop that is the real training customers, and one with their baskets over random products."""
    split = split_customers(frames[roles.table], roles, share=0.2, seed=seed)
    customers = frames["customers"][frames["customers"]["customer_id"].isin(set(split.train["customer_id"]))]
    copied = {"customers": customers, "products": frames["products"], "order_lines": split.train}
    rng = np.random.default_rng(seed)
    random_log = split.train.assign(sku=rng.choice(frames["products"]["sku"].to_numpy(), len(split.train)))
    return copied, {**copied, "order_lines": random_log}


def _finite(v: float) -> bool:
    return isinstance(v, float) and math.isfinite(v)


def test_a_sampled_shop_is_scored_beside_its_real_reference(tmp_path):
    frames = shop_frames()
    shop = infer_shop(frames).schema
    synth = ShopSynthesizer(shop, QUICK, show_progress=False).fit(frames)
    out, _ = synth.sample(60, seed=1)
    report = evaluate_shop(frames, out, shop, seed=3)
    s = report.scores
    names = shop_score_names(shop, frames=frames)
    assert set(s) <= set(names), sorted(set(s) - set(names))
    assert "customers_shape_region" in names and "products_shape_region" not in names
    assert set(names) < set(shop_score_names(shop))  # without the data: names for either parent as the customers
    assert report.meta["products"] == "real" and report.meta["customers"]["synthetic"] == 60
    assert report.meta["customers"]["held_out"] == 6 and report.meta["customers"]["train"] == 24
    for name in ("ks_baskets_per_customer", "ks_lines_per_basket", "ks_product_popularity", "als_recall@20",
                 "item_knn_ndcg@20", "popularity_recall@20", "customers_quality", "cardinality", "intertable_trends",
                 "customer_set_copies", "basket_copies", "customers_dcr_median", "customers_exact_copies"):
        assert _finite(s[name]) and _finite(s[f"{name}_reference"]), name
    assert all(0 <= s[k] <= 1 for k in s if k.startswith("ks_"))
    assert s["item_knn_recall_ratio"] == pytest.approx(s["item_knn_recall@20"] / s["item_knn_recall@20_reference"])
    assert not any(k.startswith("products_") for k in s)  # the real catalog is not scored against itself
    # the purchase model redraws a customer whose product set equals a real one
    assert s["customer_set_copies"] == 0

    data = json.loads(report.to_json(tmp_path / "shop.json").read_text())
    assert data["meta"]["shop"] == shop.name
    assert data["scores"]["customers_column_pair_trends"] is None or _finite(data["scores"]["customers_column_pair_trends"])
    page = report.to_html(tmp_path / "shop.html").read_text()
    plots = re.findall(r"src='data:image/svg\+xml;base64,([^']+)'", page)
    assert len(plots) >= 3  # behaviour distributions and the recall chart
    for plot in plots:  # each decodes to a well-formed SVG document
        assert ElementTree.fromstring(base64.b64decode(plot)).tag.endswith("svg")
    assert "recall@20" in page and "http://" not in page.replace("http://www.w3.org", "")
    paragraph = report.summary()
    assert "\n" not in paragraph and f"{s['ks_product_popularity']:.3f}" in paragraph and "item-knn" in paragraph

    missed = report.check(minimum={"cardinality": 1.01, "customers_quality": 0.0},
                          maximum={"ks_product_popularity": -1.0, "customer_set_copies": 0.5})
    assert len(missed) == 2 and missed[0].startswith("cardinality ") and missed[1].startswith("ks_product_popularity ")
    check_names({"item_knn_recall_ratio": 0.5, "customers_dcr_share": 0.6}, names)
    with pytest.raises(ShopgenError, match="recall_ratio"):
        check_names({"knn_recall_ratio": 0.5}, names)


def test_random_products_score_worse_than_copied_training_customers(categories):
    frames, shop, roles = categories
    copied, randomised = _copied_and_random(frames, roles)
    a = evaluate_shop(frames, copied, shop).scores
    b = evaluate_shop(frames, randomised, shop).scores
    # a log that is the real training log scores what the real training log scores
    for name in ("ks_product_popularity", "ks_baskets_per_customer", "item_knn_recall@20", "popularity_ndcg@20",
                 "concentration_category"):
        assert a[name] == pytest.approx(a[f"{name}_reference"]), name
    assert a["item_knn_recall_ratio"] == pytest.approx(1.0) and a["customer_set_copies"] == 1.0
    assert a["basket_copies"] == 1.0 and a["customers_exact_copies"] == 1.0
    # random products: the same customers and baskets, no popularity, no loyalty, nothing to learn
    assert b["ks_baskets_per_customer"] == a["ks_baskets_per_customer"]
    assert b["ks_product_popularity"] > a["ks_product_popularity"] + 0.1
    # item-kNN still finds the repeats among a customer's earlier products (each product is its own nearest
    # neighbour), so the random log keeps part of the recall
    assert b["item_knn_recall@20"] < a["item_knn_recall@20"] - 0.15
    assert b["popularity_recall@20"] < a["popularity_recall@20"]
    real = a["concentration_category_real"]
    assert b["concentration_category_real"] == real
    assert abs(b["concentration_category"] - real) > abs(a["concentration_category"] - real) + 0.2
    assert b["gini"] < a["gini"] and b["cardinality"] < a["cardinality"]
    assert b["customer_set_copies"] < 0.1 and b["basket_copies"] < 0.1


def test_new_products_are_scored_by_their_own_ranking_and_categories(categories, tmp_path):
    """The copied training customers over the same catalog under new keys: behaviour must score as the real
    training log does, joined through the new products table; recommenders and set copies cannot apply."""
    frames, shop, roles = categories
    copied, _ = _copied_and_random(frames, roles)
    rename = {sku: f"NEW-{i}" for i, sku in enumerate(np.random.default_rng(1).permutation(frames["products"]["sku"]))}
    renamed = {"customers": copied["customers"], "products": frames["products"].assign(sku=frames["products"]["sku"].map(rename)),
               "order_lines": copied["order_lines"].assign(sku=copied["order_lines"]["sku"].map(rename))}
    report = evaluate_shop(frames, renamed, shop)
    s = report.scores
    assert report.meta["products"] == "new" and "new" in report.meta["notes"][0]
    assert s["ks_product_popularity"] == pytest.approx(s["ks_product_popularity_reference"])
    assert s["concentration_category"] == pytest.approx(s["concentration_category_reference"])
    assert not any(re.match(r"(als|item_knn|popularity)_", k) for k in s)
    assert "customer_set_copies" not in s and "basket_copies" not in s
    assert s["products_quality"] == pytest.approx(1.0) and s["products_rule_violations_reference"] == 0
    assert set(s) <= set(shop_score_names(shop, frames=frames))
    assert report.check({"item_knn_recall_ratio": 0.5}) == ["item_knn_recall_ratio not computable for this data (needs >= 0.5)"]
    page = report.to_html(tmp_path / "new.html").read_text()
    assert "The synthetic products are new" in page and "concentration_category" in page


def test_bad_input_is_refused_with_a_reason(categories):
    frames, shop, roles = categories
    copied, _ = _copied_and_random(frames, roles)
    with pytest.raises(ShopgenError, match="outside"):
        evaluate_shop(frames, copied, shop, holdout=1.0)
    with pytest.raises(ShopgenError, match="no table 'order_lines'"):
        evaluate_shop(frames, {"customers": copied["customers"]}, shop)
    with pytest.raises(ShopgenError, match="lacks column"):
        evaluate_shop(frames, {**copied, "order_lines": copied["order_lines"].drop(columns="quantity")}, shop)


def test_online_retail_customers_score_near_the_real_hold_out():
    """A few hundred real customers of online_retail and a shop sampled from them (the products' text left
    out: the text model is not what is checked here)."""
    folder = SHARED_DATA / "online_retail"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent (../shared/data is only on project machines)")
    from shopgen.sources import read_shop

    frames = read_shop(folder)
    ids = set(np.random.default_rng(0).choice(frames["customers"]["CustomerID"].to_numpy(), 300, replace=False).tolist())
    lines = frames["interactions"][frames["interactions"]["CustomerID"].isin(ids)]
    products = frames["products"][frames["products"]["StockCode"].isin(set(lines["StockCode"]))]
    real = {"customers": frames["customers"][frames["customers"]["CustomerID"].isin(ids)],
            "products": products.drop(columns="Description"), "interactions": lines}
    shop = infer_shop(real, name="online_retail").schema
    out, _ = ShopSynthesizer(shop, QUICK, show_progress=False).fit(real).sample(300, seed=0)
    report = evaluate_shop(real, out, shop)
    s = report.scores
    assert report.meta["products"] == "real" and report.meta["customers"]["held_out"] == 60
    assert set(s) <= set(shop_score_names(shop, frames=real))
    for model in ("als", "item_knn", "popularity"):
        assert s[f"{model}_recall@20"] > 0 and s[f"{model}_recall@20_reference"] > 0
    assert s["customer_set_copies"] == 0 and 0 < s["cardinality"] <= 1 and 0 < s["customers_quality"] <= 1
    rng = np.random.default_rng(0)
    random_log = out["interactions"].assign(StockCode=rng.choice(real["products"]["StockCode"].to_numpy(), len(out["interactions"])))
    shuffled = evaluate_shop(real, {**out, "interactions": random_log}, shop).scores
    assert shuffled["ks_product_popularity"] > s["ks_product_popularity"] + 0.1
    assert shuffled["als_recall@20"] < s["als_recall@20"] and shuffled["popularity_recall@20"] < s["popularity_recall@20"]
    # a line's price no longer goes with its product's median price
    assert shuffled["intertable_trends"] < s["intertable_trends"] - 0.2
