from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLE_SCHEMA, real_catalog

from shopgen.errors import SchemaError
from shopgen.inference import infer_schema
from shopgen.schema import CatalogSchema, Rule


def _schema(**columns) -> dict:
    return {"name": "t", "columns": columns}


def test_sample_schema_loads_and_round_trips(sample_schema):
    assert sample_schema.primary_key == "sku"
    assert [c.name for c in sample_schema.text_columns] == ["name", "description"]
    assert sample_schema.conditions == ["category", "brand", "price"]
    assert [str(r) for r in sample_schema.rules] == ["list_price >= price"]
    again = CatalogSchema.from_dict(__import__("yaml").safe_load(sample_schema.to_yaml()))
    assert again == sample_schema


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (_schema(a={"type": "nummeric"}), "unknown type 'nummeric'"),
        ({"name": "t", "columns": {"a": {"type": "numeric"}}, "rules": ["a >= b"]}, "missing column 'b'"),
        ({"name": "t", "columns": {"a": {"type": "numeric"}}, "rules": ["a ~ b"]}, "not of the form"),
        (_schema(d={"type": "text", "max_length": 9, "conditioned_on": ["n"]},
                 n={"type": "text", "max_length": 9}), "generated after it"),
        (_schema(a={"type": "text", "max_length": 9, "conditioned_on": ["zz"]}), "missing column 'zz'"),
        (_schema(a={"type": "text"}), "need max_length"),
        (_schema(a={"type": "numeric", "min": 5, "max": 1}), "above max"),
        (_schema(a={"type": "numeric", "bogus": 1}), "unknown key"),
        (_schema(a={"type": "categorical", "min": 1}), "only to numeric"),
        (_schema(a={"type": "id", "pattern": "[0-9"}), "not a valid regex"),
        ({"name": "t", "primary_key": "a", "columns": {"a": {"type": "numeric"}}}, "must be a non-nullable id"),
        ({"name": "t", "columns": []}, "non-empty mapping"),
        ([1, 2], "expected a mapping"),
    ],
)
def test_bad_schemas_are_refused_with_a_clear_reason(raw, message):
    with pytest.raises(SchemaError, match=message):
        CatalogSchema.from_dict(raw)


def test_malformed_yaml_names_the_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncolumns: [a: {\n")
    with pytest.raises(SchemaError, match="line 3 is not valid YAML"):
        CatalogSchema.from_yaml(bad)
    with pytest.raises(SchemaError, match="does not exist"):
        CatalogSchema.from_yaml(tmp_path / "nope.yaml")


def test_rules_parse_both_directions():
    assert Rule.parse("price <= list_price") == Rule(high="list_price", low="price")
    assert Rule.parse("a > b") == Rule(high="a", low="b", strict=True)


def _toy(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    price = np.round(rng.lognormal(3, 1, n), 2)
    return pd.DataFrame({
        "code": [f"AB-{i:06d}" for i in rng.permutation(n)],
        "colour": rng.choice(["red", "green", "blue"], n),
        "price": price,
        "was": np.round(price * (1 + rng.uniform(0, 0.5, n)), 2),
        "stock": rng.integers(0, 90, n),
        "flag": rng.integers(0, 2, n),
        "score": np.where(rng.random(n) < 0.1, np.nan, np.round(rng.uniform(1, 5, n), 1)),
        "title": [f"{c} widget model {i} for everyday use" for i, c in enumerate(rng.choice(["Red", "Big"], n))],
    })


def test_infer_types_ranges_ids_text_and_rules():
    df = _toy()
    s = infer_schema(df, name="toy").schema
    col = {c.name: c for c in s.columns}
    assert col["code"].type == "id" and s.primary_key == "code"
    assert all(__import__("re").fullmatch(col["code"].pattern, v) for v in df["code"])
    assert col["colour"].type == "categorical" and col["colour"].values == ("blue", "green", "red")
    assert col["price"].type == "numeric" and col["price"].decimals == 2
    assert col["price"].min == df["price"].min() and col["price"].max == df["price"].max()
    assert col["stock"].type == "integer" and not col["stock"].nullable
    assert col["score"].nullable and col["score"].decimals == 1
    assert col["title"].type == "text" and col["title"].max_length >= df["title"].str.len().max()
    assert col["title"].conditioned_on == ("colour", "price")
    rules = {str(r) for r in s.rules}
    assert "was >= price" in rules
    assert not any("flag" in r for r in rules)  # a 0/1 column never forms a rule
    assert not any(r.startswith("stock") or r.endswith("stock") for r in rules)  # unrelated columns


def test_infer_skips_rules_the_ranges_already_imply():
    df = pd.DataFrame({"big": np.arange(100, 200), "small": np.arange(0, 100) % 3})
    assert infer_schema(df).schema.rules == ()


def test_check_frame_reports_the_misfit(sample_schema, sample_df):
    with pytest.raises(SchemaError, match="no rows"):
        sample_schema.check_frame(sample_df.iloc[:0])
    with pytest.raises(SchemaError, match=r"lacks column\(s\) \['price'\]"):
        sample_schema.check_frame(sample_df.drop(columns="price"))
    bad = sample_df.astype({"price": object})
    bad.loc[7, "price"] = "cheap"
    with pytest.raises(SchemaError, match="row 7 holds 'cheap'"):
        sample_schema.check_frame(bad)


def test_cast_applies_order_rounding_and_dtypes(sample_schema, sample_df):
    messy = sample_df[list(reversed(sample_df.columns))].copy()
    messy["price"] += 0.0049
    messy["units_sold"] = messy["units_sold"].astype(float)
    out = sample_schema.cast(messy)
    assert list(out.columns) == sample_schema.names
    assert out["units_sold"].dtype == "int64"
    assert np.allclose(out["price"], sample_df["price"])


@pytest.mark.parametrize("name", ["dmart", "wish_summer_2020", "flipkart", "online_retail"])
def test_infer_on_real_catalogs(name):
    from shopgen.sources import read_catalog

    df = read_catalog(real_catalog(name))
    s = infer_schema(df, name=name).schema
    assert s.names == list(df.columns)
    assert s.text_columns, "a real catalog has free text"
    for col in s.text_columns:
        assert all(dep in s.names for dep in col.conditioned_on)
    s.check_frame(df)
    units = {c.name: c.unit for c in s.columns}
    for rule in s.rules:  # a rule compares one unit with itself
        assert units[rule.high] == units[rule.low], str(rule)
    if name == "dmart":
        assert {c.name for c in s.text_columns} == {"Name", "Description"}
        assert [str(r) for r in s.rules] == ["Price >= DiscountedPrice"]
        assert dict(s.column("Price").endings)["0.00"] > 0.99  # whole rupees
    elif name == "wish_summer_2020":
        assert {"title", "title_orig", "tags"} <= {c.name for c in s.text_columns}
        assert s.column("product_id").type == "id" and s.primary_key is None  # ids repeat across variants
        assert s.column("units_sold").values == tuple(sorted(df["units_sold"].unique()))  # buckets, kept ordered
    elif name == "flipkart":
        assert s.column("product_name").type == "text"
        assert s.column("overall_rating").derived == "[product_rating]"  # identical on every rated row
        assert "retail_price >= discounted_price" in {str(r) for r in s.rules}
    else:
        assert s.column("Description").type == "text" and s.primary_key == "StockCode"
        assert s.column("median_unit_price").unit == "money"


def test_sample_schema_file_matches_sample_data(sample_df):
    s = CatalogSchema.from_yaml(SAMPLE_SCHEMA)
    assert s.names == list(sample_df.columns)


def test_catalog_files_round_trip_exactly(tmp_path, sample_df):
    """What sinks write, sources read back bit for bit (jsonl's default float parser does not)."""
    from shopgen.sinks import write
    from shopgen.sources import read_catalog

    for suffix in ("csv", "parquet", "jsonl"):
        path = write(sample_df, tmp_path / f"c.{suffix}")
        back = read_catalog(path)
        assert back["rating"].equals(sample_df["rating"]), suffix
        assert back["price"].equals(sample_df["price"]), suffix


def test_text_with_carriage_returns_and_newlines_round_trips_through_every_format(tmp_path, sample_df):
    """A bare "\\r" in one cell must not split its csv row (Python's csv writer leaves it unquoted)."""
    from shopgen.sinks import write
    from shopgen.sources import read_catalog

    df = sample_df.head(5).copy()
    df["name"] = ["one\rtwo", "three\nfour", 'say "five"', "six,\r\nseven", "eight"]
    for suffix in ("csv", "parquet", "jsonl"):
        back = read_catalog(write(df, tmp_path / f"cr.{suffix}"))
        assert len(back) == 5, suffix
        assert back["name"].tolist() == df["name"].tolist(), suffix
        assert back["price"].equals(df["price"]), suffix


@pytest.mark.parametrize(("column", "value", "needle"), [
    ("a", 1.234, "'a' has more than 2 decimals in 1 row(s), first row 1"),
    ("a", -1.0, "'a' is below min 0"),
    ("n", 1.5, "'n' is not a whole number"),
    ("c", "XL", "'c' holds a value outside its 2 values"),
    ("c", None, "'c' is empty in 1 row(s)"),
])
def test_training_rows_that_break_the_schema_are_refused_by_column_and_row(column, value, needle):
    schema = CatalogSchema.from_dict({"name": "x", "columns": {
        "a": {"type": "numeric", "decimals": 2, "min": 0}, "n": {"type": "integer"},
        "c": {"type": "categorical", "values": ["S", "M"]}}})
    ok = pd.DataFrame({"a": [1.25, 5.8100000000000005], "n": [1, 2], "c": ["S", "M"]})
    schema.check_training(ok)  # float noise within the decimals is no error
    bad = ok.astype(object)
    bad.loc[1, column] = value
    with pytest.raises(SchemaError) as err:
        schema.check_training(bad)
    assert needle in str(err.value)
    schema.check_frame(bad)  # parsing alone (evaluate's, on synthetic rows) does not judge values
