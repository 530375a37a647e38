"""The purchase model and how a purchase log is scored: on small shops the tests build."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_shop_schema import small_shop

from shopgen.errors import ShopgenError
from shopgen.evaluation.shop import gini, recommenders, split_customers
from shopgen.purchases import PurchaseModel, log_roles
from shopgen.shop_inference import infer_shop


@pytest.fixture(scope="module")
def fitted():
    frames = small_shop()
    frames["order_lines"]["when"] = pd.to_datetime("2024-01-01") + pd.to_timedelta(
        frames["order_lines"]["order_no"] * 7, unit="h")
    frames["order_lines"]["when"] = frames["order_lines"]["when"].dt.strftime("%Y-%m-%d %H:%M")
    shop = infer_shop(frames).schema
    return frames, shop, PurchaseModel(neighbours=10).fit(frames, shop)


def test_a_sampled_log_points_at_real_products_and_is_seeded(fitted):
    frames, shop, model = fitted
    assert log_roles(shop, frames).customer == "customer_id"
    log = model.sample(40, seed=1)
    assert log.equals(model.sample(40, seed=1)) and not log.equals(model.sample(40, seed=2))
    assert set(log["sku"]) <= set(frames["products"]["sku"])
    assert log["customer_id"].nunique() == 40 and log.groupby("order_no")["customer_id"].nunique().max() == 1
    for _, lines in log.groupby("customer_id"):  # a customer's baskets come in time order
        moments = lines.drop_duplicates("order_no").sort_values("order_no")["when"]
        assert moments.is_monotonic_increasing
    real = frames["order_lines"]
    pairs = set(zip(real["sku"], real["quantity"], real["paid"]))
    assert all(p in pairs for p in zip(log["sku"], log["quantity"], log["paid"])), "a line's values are its product's"


def test_no_sampled_customer_buys_exactly_a_real_customers_products(fitted):
    frames, _, model = fitted
    real = {frozenset(g) for _, g in frames["order_lines"].groupby("customer_id")["sku"]}
    log = model.sample(300, seed=0)
    assert not [c for c, g in log.groupby("customer_id")["sku"] if frozenset(g) in real]


def test_habits_are_the_shares_the_real_log_shows():
    """A shop where every customer rebuys one product and a partner of it: after the first basket every line
    is a repeat; in the first basket the partner is bought together with the first product."""
    rows = []
    for c in range(60):
        a = c % 20
        for b in range(3):
            rows += [{"customer_id": c, "sku": f"S{a:03d}", "order": c * 10 + b, "qty": 1},
                     {"customer_id": c, "sku": f"S{a + 20:03d}", "order": c * 10 + b, "qty": 2}]
    frames = {"customers": pd.DataFrame({"customer_id": range(60), "tier": ["a", "b"] * 30}),
              "products": pd.DataFrame({"sku": [f"S{i:03d}" for i in range(40)], "price": np.arange(40) + 0.5}),
              "lines": pd.DataFrame(rows)}
    shop = infer_shop(frames).schema
    model = PurchaseModel().fit(frames, shop)
    assert model.habits_["repeat"] == 1.0 and model.habits_["first basket together"] == 1.0
    log = model.sample(30, seed=0)
    partner = log.groupby("order")["sku"].apply(lambda s: sorted(int(x[1:]) for x in s))
    assert (partner.map(lambda items: items[1] - items[0] == 20 if len(items) == 2 else True)).mean() > 0.9


def test_a_shop_without_a_purchase_log_is_refused():
    frames = small_shop()
    frames["order_lines"] = frames["order_lines"].drop(columns="order_no")
    with pytest.raises(ShopgenError, match="exactly one purchase log"):
        PurchaseModel().fit(frames, infer_shop(frames).schema)


def test_gini_of_known_shares():
    assert gini(np.ones(10)) == pytest.approx(0.0)
    assert gini(np.eye(1, 10).ravel()) == pytest.approx(0.9)


def test_recommenders_learn_which_products_go_together():
    """Two kinds of customer, each buying from its own ten products: trained on the log, item-kNN and ALS put a
    held-out customer's own kind first (recall near 1); popularity, blind to the kind, gets about half."""
    rng = np.random.default_rng(0)
    rows = []
    for c in range(200):
        kind = c % 2
        for b in range(3):
            for item in rng.choice(10, 4, replace=False):
                rows.append({"customer": c, "item": f"I{kind * 10 + item:02d}", "basket": c * 10 + b, "day": b})
    log = pd.DataFrame(rows)
    frames = {"customers": pd.DataFrame({"customer": range(200), "kind": np.arange(200) % 2}),
              "items": pd.DataFrame({"item": [f"I{i:02d}" for i in range(20)], "size": np.arange(20) % 3}),
              "log": log}
    shop = infer_shop(frames).schema
    roles = log_roles(shop, frames)
    split = split_customers(log, roles, share=0.2, seed=0)
    assert split.target[roles.customer].nunique() == 40
    assert not set(split.train[roles.customer]) & set(split.held_out[roles.customer])
    scores = recommenders(split.train, split, roles, frames["items"]["item"].to_numpy(), k=10)
    assert scores["item_knn"]["recall@10"] > 0.9 and scores["als"]["recall@10"] > 0.9
    assert scores["popularity"]["recall@10"] < 0.7


def test_a_saved_model_samples_the_same_log(fitted, tmp_path):
    """save_pretrained writes plain data (no pickle); the model read back writes the same log for a seed."""
    _, _, model = fitted
    model.save_pretrained(tmp_path / "purchases")
    assert sorted(p.name for p in (tmp_path / "purchases").iterdir()) == [
        "line_values.parquet", "purchases.json", "purchases.npz"]
    again = PurchaseModel.from_pretrained(tmp_path / "purchases")
    assert again.sample(25, seed=4).equals(model.sample(25, seed=4))
