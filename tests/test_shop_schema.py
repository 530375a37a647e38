"""A shop's schema: several tables, their keys, foreign keys and baskets, declared or inferred."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shopgen.errors import SchemaError
from shopgen.shop_inference import infer_shop
from shopgen.shop_schema import ForeignKey, ShopSchema


def small_shop(seed: int = 0) -> dict[str, pd.DataFrame]:
    """30 customers numbered 1..30, 40 products with codes, and order lines: each order one customer's,
    2-5 lines; quantities 1..5 (whole numbers that happen to be customer numbers too)."""
    rng = np.random.default_rng(seed)
    customers = pd.DataFrame({"customer_id": np.arange(1, 31), "region": rng.choice(["north", "south", "east"], 30)})
    skus = [f"P-{i:04d}X" for i in range(40)]
    products = pd.DataFrame({"sku": skus, "price": rng.uniform(1, 50, 40).round(2)})
    lines, order = [], 9000
    for customer in range(1, 31):
        for _ in range(int(rng.integers(1, 4))):
            order += 1
            for _ in range(int(rng.integers(2, 6))):
                lines.append({"customer_id": customer, "sku": skus[int(rng.integers(0, 40))], "order_no": order,
                              "quantity": int(rng.integers(1, 6)), "paid": round(float(rng.uniform(1, 50)), 2)})
    return {"customers": customers, "products": products, "order_lines": pd.DataFrame(lines)}


def test_keys_foreign_keys_and_baskets_are_found_and_explained():
    found = infer_shop(small_shop(), name="tiny")
    shop = found.schema
    assert set(shop.foreign_keys) == {ForeignKey("order_lines", "customer_id", "customers"),
                                      ForeignKey("order_lines", "sku", "products")}
    assert shop.baskets == (("order_lines", "order_no"),)
    assert shop.order.index("order_lines") > max(shop.order.index("customers"), shop.order.index("products"))
    assert shop.table("customers").primary_key == "customer_id" and shop.table("products").primary_key == "sku"
    assert {c: shop.table("order_lines").column(c).type for c in ("customer_id", "sku", "order_no")} == dict.fromkeys(
        ("customer_id", "sku", "order_no"), "id")
    decisions = {(k.table, k.column): k for k in found.keys}
    quantity = decisions[("order_lines", "quantity")]
    assert quantity.kind == "not a key" and quantity.doubtful and "by chance" in quantity.reason
    assert shop.table("order_lines").column("quantity").type == "integer"
    basket = decisions[("order_lines", "order_no")]
    assert basket.kind == "basket" and not basket.doubtful and "each belonging to one customer_id" in basket.reason
    text = found.table()
    assert "order_lines.sku" in text and "-> products.sku" in text and "by chance" in text


def test_codes_under_a_name_that_says_nothing_are_a_doubtful_key():
    tables = small_shop()
    tables["order_lines"] = tables["order_lines"].rename(columns={"sku": "item"})
    found = infer_shop(tables)
    item = next(k for k in found.keys if k.column == "item")
    assert item.kind == "foreign key" and item.doubtful and "codes, not numbers" in item.reason
    assert ForeignKey("order_lines", "item", "products") in found.schema.foreign_keys
    few = small_shop()
    few["products"] = few["products"].head(12)  # 12 codes: too few to rule out chance
    few["order_lines"] = few["order_lines"][few["order_lines"]["sku"].isin(few["products"]["sku"])].rename(columns={"sku": "item"})
    assert not any(fk.column == "item" for fk in infer_shop(few).schema.foreign_keys)


def test_a_label_of_the_customer_is_not_a_basket():
    """A column every row of a customer shares (one group per customer) names the customer, not an order."""
    tables = small_shop()
    lines = tables["order_lines"].drop(columns="order_no")
    lines["account"] = lines["customer_id"].map(lambda c: f"acct-{c}")
    tables["order_lines"] = lines
    assert infer_shop(tables).schema.baskets == ()


def test_keys_written_as_floats_match_integer_keys():
    """17850.0 in one file and 17850 in another are the same customer (a column with gaps reads as floats)."""
    tables = small_shop()
    lines = tables["order_lines"].astype({"customer_id": float})
    lines.loc[0, "paid"] = np.nan
    tables["order_lines"] = lines
    assert ForeignKey("order_lines", "customer_id", "customers") in infer_shop(tables).schema.foreign_keys


def test_shop_schema_round_trips_through_yaml_with_parents_first(tmp_path):
    shop = infer_shop(small_shop(), name="tiny").schema
    path = tmp_path / "shop.yaml"
    path.write_text(shop.to_yaml())
    again = ShopSchema.from_yaml(path)
    assert again == shop
    raw = again.to_dict()
    reordered = {"name": "x", "tables": {"order_lines": raw["tables"]["order_lines"],
                                         "products": raw["tables"]["products"], "customers": raw["tables"]["customers"]}}
    assert ShopSchema.from_dict(reordered).order == ["products", "customers", "order_lines"]


def _raw() -> dict:
    return {"name": "s", "tables": {
        "customers": {"primary_key": "id", "columns": {"id": {"type": "id"}, "country": {"type": "categorical"}}},
        "lines": {"columns": {"customer": {"type": "id"}, "order": {"type": "id"}, "qty": {"type": "integer"}},
                  "foreign_keys": {"customer": "customers"}, "basket": "order"},
    }}


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: r["tables"]["lines"].update(foreign_keys={"customer": "people"}), "points at no table"),
    (lambda r: r["tables"]["lines"].update(foreign_keys={"ghost": "customers"}), "has no column 'ghost'"),
    (lambda r: r["tables"]["lines"].update(foreign_keys={"qty": "customers"}), "make its type id"),
    (lambda r: r["tables"]["customers"].pop("primary_key"), "has no primary_key"),
    (lambda r: r["tables"]["lines"].update(basket="qty"), "basket column is an identifier"),
    (lambda r: r["tables"]["lines"].pop("foreign_keys"), "basket belongs to a parent row"),
    (lambda r: r["tables"]["lines"].update(foreign_keys=["customer"]), "foreign_keys must map a column"),
    (lambda r: r["tables"].update(orders={"primary_key": "id", "columns": {"id": {"type": "id"}, "line": {"type": "id"},
                                                                           "day": {"type": "integer"}},
                                          "foreign_keys": {"line": "customers"}})
     or r["tables"]["customers"]["columns"].update(o={"type": "id"})
     or r["tables"]["customers"].update(foreign_keys={"o": "orders"}), "form a cycle"),
    (lambda r: r.update(tables=[]), "a shop schema is a mapping"),
])
def test_a_bad_shop_schema_is_refused_with_what_and_how(change, message):
    raw = _raw()
    ShopSchema.from_dict(raw)  # the unchanged one is fine
    change(raw)
    with pytest.raises(SchemaError, match=message):
        ShopSchema.from_dict(raw)


def test_schema_infer_on_a_folder_writes_a_shop_and_ddl_prints_its_tables(tmp_path):
    """`shopgen schema infer DIR` reads every table in the folder; `schema ddl` prints them parents first."""
    from test_cli import shopgen

    folder = tmp_path / "shop"
    folder.mkdir()
    for name, frame in small_shop().items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    (folder / "notes.txt").write_text("not a table")
    done = shopgen("schema", "infer", str(folder), "-o", str(tmp_path / "shop.yaml"))
    assert done.returncode == 0, done.stderr
    assert "order_lines.order_no" in done.stdout and "basket" in done.stdout
    shop = ShopSchema.from_yaml(tmp_path / "shop.yaml")
    assert shop.name == "shop" and set(shop.names) == {"customers", "products", "order_lines"}
    ddl = shopgen("schema", "ddl", str(tmp_path / "shop.yaml"), "--dialect", "postgresql")
    assert ddl.returncode == 0, ddl.stderr
    assert ddl.stdout.index("CREATE TABLE order_lines") > ddl.stdout.index("CREATE TABLE customers")
    assert 'FOREIGN KEY(sku) REFERENCES products (sku)' in ddl.stdout
    refused = shopgen("schema", "ddl", str(tmp_path / "shop.yaml"), "--table", "x")
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = shopgen("schema", "infer", str(empty))
    assert nothing.returncode == 2 and "holds no table" in nothing.stderr


def test_online_retail_keys_are_found_from_the_folder():
    """The real shop: the purchase log's customer and product point at their tables, and the invoice is its
    basket; no other column is taken for a key."""
    from conftest import real_catalog

    from shopgen.sources import read_shop

    folder = real_catalog("online_retail").parent
    found = infer_shop(read_shop(folder), name="online_retail")
    shop = found.schema
    assert set(shop.foreign_keys) == {ForeignKey("interactions", "CustomerID", "customers"),
                                      ForeignKey("interactions", "StockCode", "products")}
    assert shop.baskets == (("interactions", "InvoiceNo"),)
    assert not [k for k in found.keys if k.doubtful]
    assert shop.order[-1] == "interactions"


def test_columns_that_sum_up_child_rows_are_rollups_computed_from_them():
    """Units sold (a sum of line quantities, 0 for a product nobody bought) and lines per product are found as
    rollups; a stock level that only looks like a count is not; recomputed from changed lines, the totals are
    what a groupby of those lines gives."""
    from shopgen.rollups import compute_rollups
    from shopgen.shop_schema import Rollup

    tables = small_shop()
    lines = tables["order_lines"]
    products = pd.concat([tables["products"], pd.DataFrame({"sku": ["P-9999X"], "price": [3.5]})], ignore_index=True)
    tables["products"] = products
    products["units_sold"] = products["sku"].map(lines.groupby("sku")["quantity"].sum()).fillna(0).astype(int)
    products["lines"] = products["sku"].map(lines.groupby("sku").size()).fillna(0).astype(int)
    products["stock"] = np.random.default_rng(1).integers(0, 50, len(products))
    assert (products["units_sold"] == 0).any(), "a product without lines exercises the fill"
    found = infer_shop(tables)
    assert set(found.schema.rollups_of("products")) == {Rollup("products", "units_sold", "sum", "order_lines", "quantity"),
                                                        Rollup("products", "lines", "count", "order_lines")}
    changed = lines.assign(quantity=lines["quantity"] * 2).iloc[::2]
    again = compute_rollups({**tables, "order_lines": changed}, found.schema)["products"]
    want = products["sku"].map(changed.groupby("sku")["quantity"].sum()).fillna(0)
    assert again["units_sold"].tolist() == want.astype(int).tolist()
    assert again["lines"].tolist() == products["sku"].map(changed.groupby("sku").size()).fillna(0).astype(int).tolist()
    assert again["stock"].equals(products["stock"])
    assert ShopSchema.from_dict(found.schema.to_dict()) == found.schema
    # computed from however many lines a sample has: the real extremes bound neither total (a count keeps 0)
    schema = found.schema.table("products")
    units, counted, stock = schema.column("units_sold"), schema.column("lines"), schema.column("stock")
    assert (units.min, units.max, units.values) == (None, None, None)
    assert (counted.min, counted.max, counted.values) == (0, None, None)
    assert stock.max is not None
    assert not units.nullable and not counted.nullable  # a sum or count of no lines is 0


@pytest.mark.parametrize(("rollup", "message"), [
    ("count(lines.qty)", "count counts rows"),
    ("sum(lines.customer)", "needs a numeric column"),
    ("max(lines)", "name the column"),
    ("total(lines.qty)", "not of the form"),
    ("sum(nowhere.qty)", "not of the form"),
])
def test_a_bad_rollup_is_refused(rollup, message):
    raw = _raw()
    raw["tables"]["customers"]["columns"]["bought"] = {"type": "integer"}
    raw["tables"]["customers"]["rollups"] = {"bought": "sum(lines.qty)"}
    ShopSchema.from_dict(raw)
    raw["tables"]["customers"]["rollups"] = {"bought": rollup}
    with pytest.raises(SchemaError, match=message):
        ShopSchema.from_dict(raw)


def test_two_keys_to_one_table_are_both_declared_and_sum_nothing():
    """A sale's buyer and seller are both customers: two foreign keys to one table, and no total is declared,
    since which of the two a customer's column would sum is not one thing."""
    rng = np.random.default_rng(3)
    people = pd.DataFrame({"person_id": np.arange(1, 41), "city": rng.choice(["a", "b"], 40)})
    sales = pd.DataFrame({"buyer_person_id": rng.integers(1, 41, 300), "seller_person_id": rng.integers(1, 41, 300),
                          "amount": rng.integers(1, 9, 300)})
    people["bought"] = people["person_id"].map(sales.groupby("buyer_person_id").size()).fillna(0).astype(int)
    shop = infer_shop({"people": people, "sales": sales}).schema
    assert {fk.column for fk in shop.foreign_keys} == {"buyer_person_id", "seller_person_id"}
    assert shop.rollups == ()


def test_a_link_table_of_ids_only_is_part_of_a_shop_but_not_a_catalog_to_learn():
    from shopgen.schema import CatalogSchema

    raw = _raw()
    raw["tables"]["tags"] = {"columns": {"customer": {"type": "id"}, "tag": {"type": "id"}},
                             "foreign_keys": {"customer": "customers"}}
    assert "tags" in ShopSchema.from_dict(raw).order
    only_ids = CatalogSchema.from_dict({"name": "tags", "columns": {"tag": {"type": "id"}}})
    with pytest.raises(SchemaError, match="no columns to learn"):
        only_ids.check_training(pd.DataFrame({"tag": ["a", "b"]}))


def test_an_extreme_of_child_rows_may_be_missing_in_a_sample():
    """Every real product was bought, so its dearest price paid is always set; a sampled product nobody bought
    has none, so the rollup column is declared nullable (a sum keeps NOT NULL: no lines sum to 0)."""
    tables = small_shop()
    lines = tables["order_lines"]
    products = tables["products"][tables["products"]["sku"].isin(set(lines["sku"]))].copy()
    products["dearest"] = products["sku"].map(lines.groupby("sku")["paid"].max())
    products["units"] = products["sku"].map(lines.groupby("sku")["quantity"].sum())
    tables["products"] = products
    schema = infer_shop(tables).schema
    assert {r.column: r.func for r in schema.rollups_of("products")} == {"dearest": "max", "units": "sum"}
    dearest, units = schema.table("products").column("dearest"), schema.table("products").column("units")
    assert dearest.nullable and (dearest.min, dearest.max) == (None, None)
    assert not units.nullable
