"""The whole-shop synthesizer: new customers placed by behaviour, new products with text, every key and total
agreeing, the same shop for a seed, and a bundle that samples what the fitted object samples."""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest
from test_shop_schema import small_shop

from shopgen.errors import ShopgenError
from shopgen.options import FitOptions, TextSampling
from shopgen.schema import CatalogSchema, Column
from shopgen.shop_inference import infer_shop
from shopgen.shop_synthesizer import ShopSynthesizer
from shopgen.sinks import write_shop
from shopgen.slots import assign, match

ADJECTIVES = ["red", "blue", "green", "small", "large", "wooden", "metal", "paper"]
NOUNS = ["mug", "lamp", "box", "bag", "card", "clock", "frame", "candle"]
QUICK = FitOptions(tabular="copula", text_epochs=2, max_train_minutes=1)


def shop_frames(seed: int = 0) -> dict[str, pd.DataFrame]:
    """small_shop with a count of orders per customer (a rollup), a units-sold total per product (a rollup)
    and a product name (text)."""
    frames = small_shop(seed)
    lines = frames["order_lines"]
    customers = frames["customers"].copy()
    customers["orders"] = customers["customer_id"].map(lines.groupby("customer_id")["order_no"].nunique())
    products = frames["products"].copy()
    rng = np.random.default_rng(seed)
    products["name"] = [f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {i}" for i in range(len(products))]
    products["units_sold"] = products["sku"].map(lines.groupby("sku")["quantity"].sum()).fillna(0).astype(int)
    return {"customers": customers, "products": products, "order_lines": lines}


@pytest.fixture(scope="module")
def fitted():
    frames = shop_frames()
    shop = infer_shop(frames).schema
    assert [r.column for r in shop.rollups_of("customers")] == ["orders"]
    assert [r.column for r in shop.rollups_of("products")] == ["units_sold"]
    assert shop.table("products").column("name").type == "text"
    return frames, shop, ShopSynthesizer(shop, QUICK, show_progress=False).fit(frames)


def _check_shop(out: dict[str, pd.DataFrame], shop) -> None:
    """Every foreign key resolves and every rollup equals what the lines add up to."""
    assert list(out) == shop.order
    log, customers, products = out["order_lines"], out["customers"], out["products"]
    assert customers["customer_id"].is_unique and products["sku"].is_unique
    assert set(log["customer_id"]) <= set(customers["customer_id"]) and set(log["sku"]) <= set(products["sku"])
    orders = log.groupby("customer_id")["order_no"].nunique().reindex(customers["customer_id"], fill_value=0)
    assert customers["orders"].tolist() == orders.tolist()
    units = log.groupby("sku")["quantity"].sum().reindex(products["sku"], fill_value=0)
    assert products["units_sold"].astype(int).tolist() == units.astype(int).tolist()


def test_new_customers_over_the_real_catalog(fitted, tmp_path):
    frames, shop, synth = fitted
    out, stats = synth.sample(50, seed=2)
    _check_shop(out, shop)
    real = frames["products"]
    assert out["products"].drop(columns="units_sold").equals(real.drop(columns="units_sold"))
    new = out["customers"]
    assert list(new.columns) == ["customer_id", "region", "orders"] and len(new) == 50
    assert set(new["region"]) <= set(frames["customers"]["region"])
    assert set(stats.tables) == {"customers"}
    again, _ = synth.sample(50, seed=2)
    assert all(again[t].equals(out[t]) for t in out)
    folder = write_shop(out, tmp_path / "shop")
    assert sorted(p.name for p in folder.iterdir()) == ["customers.parquet", "order_lines.parquet", "products.parquet"]
    with pytest.raises(ShopgenError, match="not an empty folder"):
        write_shop(out, folder)


def test_a_whole_synthetic_shop_has_new_products_with_text_and_units_sold_that_add_up(fitted):
    frames, shop, synth = fitted
    out, stats = synth.sample(40, seed=3, products="new", text=TextSampling(workers=1))
    _check_shop(out, shop)
    products = out["products"]
    assert len(products) == len(frames["products"]) and not set(products["sku"]) & set(frames["products"]["sku"])
    assert products["name"].map(lambda s: isinstance(s, str) and len(s) > 0).all()
    assert set(stats.tables) == {"customers", "products"}
    again, _ = synth.sample(40, seed=3, products="new", text=TextSampling(workers=1))
    assert all(again[t].equals(out[t]) for t in out)
    with pytest.raises(ShopgenError, match="use real .* or new"):
        synth.sample(5, products="fake")


def test_the_bundle_samples_the_same_shop(fitted, tmp_path):
    _, _, synth = fitted
    synth.save(tmp_path / "bundle")
    names = {p.relative_to(tmp_path / "bundle").as_posix() for p in (tmp_path / "bundle").rglob("*") if p.is_file()}
    assert {"schema.yaml", "manifest.json", "products.parquet", "purchases/purchases.npz",
            "tables/0/tabular.pkl", "tables/1/text/config.json"} <= names
    assert not any(n.endswith((".pt", ".bin")) for n in names)
    loaded = ShopSynthesizer.load(tmp_path / "bundle", show_progress=False)
    for products in ("real", "new"):
        a, _ = synth.sample(20, seed=5, products=products, text=TextSampling(workers=1))
        b, _ = loaded.sample(20, seed=5, products=products, text=TextSampling(workers=1))
        assert all(a[t].equals(b[t]) for t in a), products


def test_matching_places_each_drawn_row_where_its_values_are_closest():
    """Ten places with prices 1..10 and a kind; ten drawn rows, shuffled, each close to one place: every row
    goes back to its own place, and no drawn row is used twice."""
    schema = CatalogSchema("t", (Column("key", "id"), Column("price", "numeric"),
                                 Column("kind", "categorical", values=("a", "b"))), primary_key="key")
    places = pd.DataFrame({"key": range(10), "price": np.arange(1.0, 11.0), "kind": ["a", "b"] * 5})
    order = np.random.default_rng(0).permutation(10)
    drawn = places.iloc[order].assign(price=lambda d: d["price"] + 0.1, key=range(100, 110)).reset_index(drop=True)
    chosen = match(schema, places, drawn)
    assert sorted(chosen) == list(range(10))
    assert drawn["price"].to_numpy()[chosen] == pytest.approx(places["price"].to_numpy() + 0.1)
    assert (drawn["kind"].to_numpy()[chosen] == places["kind"].to_numpy()).all()


def test_large_tables_are_matched_in_blocks_and_still_one_to_one():
    rng = np.random.default_rng(1)
    places = rng.random((500, 2))
    drawn = places[rng.permutation(500)] + rng.normal(0, 0.001, (500, 2))
    chosen = assign(places, drawn, block=100)
    assert sorted(chosen) == list(range(500))
    exact = assign(places, drawn)
    assert np.abs(drawn[chosen] - places).mean() < 0.05 and np.abs(drawn[exact] - places).max() < 0.01


def test_the_command_line_fits_a_folder_and_samples_a_shop(tmp_path):
    """`shopgen fit DIR` learns a shop; `shopgen sample` writes its tables as a new folder; bad input gets
    one line, exit 2 and nothing written."""
    from test_cli import one_line_error, shopgen

    folder = tmp_path / "real"
    folder.mkdir()
    for name, frame in shop_frames().items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    fitted = shopgen("fit", folder, "--out", tmp_path / "bundle", "--tabular", "copula", "--text-epochs", "1", "-q")
    assert fitted.returncode == 0, fitted.stderr
    assert "fitted a shop of customers 30" in fitted.stdout
    done = shopgen("sample", tmp_path / "bundle", "-n", "25", "-o", tmp_path / "out", "--products", "new",
                   "--format", "csv", "--text-workers", "1", "-q")
    assert done.returncode == 0, done.stderr
    out = {t: pd.read_csv(tmp_path / "out" / f"{t}.csv") for t in ("customers", "products", "order_lines")}
    shop = infer_shop(shop_frames()).schema
    _check_shop({t: out[t] for t in shop.order}, shop)
    assert len(out["customers"]) == 25
    checked = shopgen("validate", tmp_path / "out", "--schema", tmp_path / "bundle")
    assert checked.returncode == 0, checked.stderr
    assert "ok    order_lines.sku: a key of products" in checked.stdout and "PASS" in checked.stdout.splitlines()[-1]
    scored = shopgen("evaluate", folder, tmp_path / "out", "--schema", tmp_path / "bundle", "--report",
                     tmp_path / "shop.html", "--max", "ks_baskets_per_customer=1")
    assert scored.returncode == 0, scored.stderr
    assert "gates passed: 1" in scored.stdout and (tmp_path / "shop.html").is_file()
    one_line_error(shopgen("evaluate", folder, tmp_path / "out", "--schema", tmp_path / "bundle", "--report",
                           tmp_path / "x.html", "--min", "quality=0.5"), 2, "quality")
    assert not (tmp_path / "x.html").exists()
    seeded = shopgen("seed", tmp_path / "bundle", "--db", f"sqlite:///{tmp_path / 'shop.db'}", "-n", "20", "--products",
                     "new", "-q")
    assert seeded.returncode == 0, seeded.stderr
    with sqlite3.connect(tmp_path / "shop.db") as con:
        assert con.execute("select count(*) from customers").fetchone() == (20,)
        assert con.execute("select count(*) from order_lines l left join products p on l.sku = p.sku "
                           "where p.sku is null").fetchone() == (0,)
        assert {row[2] for row in con.execute("pragma foreign_key_list(order_lines)")} == {"customers", "products"}
    one_line_error(shopgen("seed", tmp_path / "bundle", "--db", f"sqlite:///{tmp_path / 'shop.db'}", "-n", "5"),
                   2, "already exist")
    one_line_error(shopgen("sample", tmp_path / "bundle", "-n", "5", "-o", tmp_path / "out"), 2, "not an empty folder")
    one_line_error(shopgen("sample", tmp_path / "bundle", "-n", "5", "-o", tmp_path / "o2", "--where", "region=north"),
                   2, "conditions applies to one catalog")
    one_line_error(shopgen("sample", tmp_path / "bundle", "-n", "5", "-o", tmp_path / "o3", "--products", "old"),
                   2, "products 'old' is unknown")
    one_line_error(shopgen("sample", tmp_path / "bundle", "-n", "5", "-o", tmp_path / "o4.csv"), 2, "names a file")
    assert not any((tmp_path / o).exists() for o in ("o2", "o3", "o4.csv"))
    one_line_error(shopgen("fit", folder, "--out", tmp_path / "b2", "--schema", tmp_path / "bundle" / "customers.yaml"),
                   2, "does not exist")


def test_validate_checks_every_table_its_foreign_keys_and_its_rollups(fitted, tmp_path):
    """A sampled shop passes; a line pointing at no product and a units-sold total that disagrees with the
    lines are each caught, by row."""
    from shopgen.validation import validate_shop

    _, shop, synth = fitted
    out, _ = synth.sample(30, seed=1)
    assert all(v.success for v in validate_shop(out, shop).values())
    dangling = {**out, "order_lines": out["order_lines"].copy()}
    dangling["order_lines"].loc[3, "sku"] = "P-9999X"
    lines = validate_shop(dangling, shop)["order_lines"]
    assert lines.failures == {"sku: a key of products": 1} and lines.bad_rows.tolist() == [3]
    wrong = {**out, "products": out["products"].copy()}
    wrong["products"].loc[[0, 5], "units_sold"] += 1
    products = validate_shop(wrong, shop)["products"]
    label = "units_sold: = sum(order_lines.quantity)"
    assert set(products.failures) == {label} and sorted(products.bad_rows.tolist()) == [0, 5]
    assert "lines give" in products.examples[label][0]


def test_a_shop_bundle_naming_a_folder_outside_itself_is_refused(fitted, tmp_path):
    """The manifest is data anyone who can write the folder can change: a table folder it names must be one
    of the bundle's own numbered folders."""
    import json

    from shopgen.errors import BundleError

    _, _, synth = fitted
    synth.save(tmp_path / "bundle")
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    manifest["tables"]["customers"]["folder"] = "../elsewhere"
    (tmp_path / "bundle" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="not its own"):
        ShopSynthesizer.load(tmp_path / "bundle")


def test_a_shop_fitted_to_keep_the_real_catalog_learns_no_products():
    frames = shop_frames()
    shop = infer_shop(frames).schema
    synth = ShopSynthesizer(shop, QUICK.replace(products="real"), show_progress=False).fit(frames)
    assert set(synth.table_models_) == {"customers"}
    _check_shop(synth.sample(10, seed=0).tables, shop)
    with pytest.raises(ShopgenError, match="fitted to keep the real catalog"):
        synth.sample(10, products="new")


def test_a_customers_own_column_follows_their_behaviour():
    """Customers of tier 'gold' order 4-6 times, the rest once or twice: the drawn tier rides with the drawn
    order count, and each customer takes the place whose generated orders are closest, so the gold customers
    of a sample are the ones who order most (drawn on their own, the tiers would be spread at random)."""
    rng = np.random.default_rng(0)
    customers, lines, order = [], [], 0
    for c in range(300):
        gold = c % 3 == 0
        customers.append({"customer_id": c, "tier": "gold" if gold else "plain"})
        for _ in range(int(rng.integers(4, 7) if gold else rng.integers(1, 3))):
            order += 1
            for _ in range(int(rng.integers(1, 4))):
                lines.append({"customer_id": c, "sku": f"S{int(rng.integers(50)):03d}", "order_no": order})
    customers = pd.DataFrame(customers)
    lines = pd.DataFrame(lines)
    customers["orders"] = customers["customer_id"].map(lines.groupby("customer_id")["order_no"].nunique())
    frames = {"customers": customers, "products": pd.DataFrame({"sku": [f"S{i:03d}" for i in range(50)]}),
              "order_lines": lines}
    shop = infer_shop(frames).schema
    synth = ShopSynthesizer(shop, QUICK.replace(products="real"), show_progress=False).fit(frames)
    out = synth.sample(300, seed=1).tables["customers"]
    by_tier = out.groupby("tier")["orders"].mean()
    assert by_tier["gold"] > by_tier["plain"] + 0.8, by_tier  # real: 5 vs 1.5; placed here: 3.5 vs 2.1
