"""Schema inference, decision by decision, on small frames whose truth the test knows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shopgen.errors import SchemaError
from shopgen.expressions import Expression, ExpressionError
from shopgen.grid import Endings, Grid, on_grid
from shopgen.inference import decide_column, header_words, infer_schema
from shopgen.schema import CatalogSchema

RNG = np.random.default_rng(0)
ADJ = ["Classic", "Ultra", "Pro", "Soft", "Bold", "Lite", "Prime", "Smart", "Urban", "Swift", "Aero", "Flex"]
NOUN = ["Running Shoe", "Yoga Mat", "Water Bottle", "Backpack", "Track Jacket", "Cap", "Sock Pack", "Gym Bag"]


def titles(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [f"{rng.choice(ADJ)} {rng.choice(NOUN)} {rng.choice(['Red', 'Blue', 'Black'])} {i}" for i in range(n)]


def kind(name: str, values) -> tuple[str, bool, str]:
    col, d = decide_column(name, pd.Series(values))
    assert col.type == d.kind
    return d.kind, d.doubtful, d.reason


# ---- column kinds --------------------------------------------------------------------------------
def test_mostly_distinct_multiword_titles_are_text_whatever_the_header():
    for header in ("Product", "x1", "title"):
        k, _, reason = kind(header, titles(300))
        assert k == "text", header
        assert "unrepeated" in reason


def test_titles_that_repeat_a_little_are_still_text():
    values = titles(200) * 2  # every title twice: sizes of one product
    assert kind("Product Name", values)[0] == "text"


def test_repeated_multiword_levels_are_categorical():
    values = list(RNG.choice(["Home & Kitchen", "Personal Care", "Packaged Food", "Fruits & Vegetables"], 400))
    k, doubtful, reason = kind("aisle", values)
    assert (k, doubtful) == ("categorical", False)
    assert "levels repeat" in reason


def test_a_high_cardinality_column_whose_levels_repeat_is_categorical():
    brands = [f"Brand{i}" for i in range(80)]
    values = [brands[i % 80] for i in range(800)]  # 80 levels of 10 rows each
    assert kind("maker", values)[:2] == ("categorical", False)


def test_unique_single_tokens_with_digits_are_ids():
    values = [f"SKU-{100000 + i}" for i in range(200)]
    col, d = decide_column("anything", pd.Series(values))
    assert d.kind == "id"
    assert all(pd.Series(values).str.fullmatch(col.pattern))


def test_unique_single_words_without_digits_are_name_like_categories_flagged():
    rng = np.random.default_rng(1)
    syll = ["ka", "lo", "mi", "ru", "te", "zo", "pa", "ne", "vi"]
    names = ["".join(rng.choice(syll, 4)) + str(i % 3) * 0 for i in range(300)]
    k, doubtful, reason = kind("seller", names)
    assert (k, doubtful) == ("categorical", True)
    assert "names" in reason


def test_header_breaks_a_tie_near_the_boundary_only():
    # about 55 % of rows share a level with 5+ others: near the categorical boundary
    shared = [f"Soft Cotton Tee Pack {i}" for i in range(11) for _ in range(5)]
    values = shared + titles(45)
    assert len(values) == 100
    k_text, doubtful, _ = kind("title", values)
    k_other, _, _ = kind("col7", values)
    assert (k_text, doubtful) == ("text", True)
    assert k_other == "categorical"


def test_header_words_split_camel_case_and_separators():
    assert header_words("DiscountedPrice") == {"discounted", "price"}
    assert header_words("rating_count") == {"rating", "count"}
    assert header_words("Listing Price (INR)") == {"listing", "price", "inr"}


# ---- numbers: units, levels, endings, sentinels ----------------------------------------------------
def test_units_come_from_the_header_and_must_agree_with_the_values():
    assert decide_column("sale price", pd.Series([10.5, 20.0, 30.25]))[0].unit == "money"
    assert decide_column("Discount", pd.Series([0, 10, 40, 60]))[0].unit == "percent"
    assert decide_column("Discount", pd.Series([0, 150, 400]))[0].unit is None  # not a percentage
    assert decide_column("reviews", pd.Series([0, 3, 17]))[0].unit == "count"
    assert decide_column("rating", pd.Series([1.5, 4.0, 5.0]))[0].unit == "rating"
    assert decide_column("rating_count", pd.Series([0, 12, 400]))[0].unit == "count"
    assert decide_column("width", pd.Series([1.5, 4.0, 5.0]))[0].unit is None


def test_ordered_bucketed_numbers_keep_their_levels():
    buckets = [1, 10, 100, 1000, 10000]
    values = list(RNG.choice(buckets, 500))
    col, d = decide_column("units_sold", pd.Series(values))
    assert col.values == tuple(buckets)
    assert "ordered levels" in d.reason


def test_endings_are_recorded_when_far_from_uniform():
    whole = RNG.integers(1, 500, 1000)
    cents = RNG.choice([0.99, 0.49, 0.0], 1000, p=[0.7, 0.2, 0.1])
    col, _ = decide_column("price", pd.Series(whole + cents))
    shares = dict(col.endings)
    assert set(shares) == {"0.99", "0.49", "0.00"}
    assert shares["0.99"] == pytest.approx(0.7, abs=0.04)


def test_uniform_cents_and_small_counts_have_no_endings():
    assert decide_column("price", pd.Series(np.round(RNG.uniform(1, 500, 1000), 2)))[0].endings is None
    assert decide_column("qty", pd.Series(RNG.integers(0, 9, 1000)))[0].endings is None  # the digit is the value


def test_last_digit_endings_of_whole_prices():
    values = RNG.integers(2, 300, 1000) * 10 - 1  # 19, 29, ... 2999
    col, _ = decide_column("mrp", pd.Series(values))
    assert dict(col.endings) == {"9": 1.0}


def test_a_zero_price_among_positive_ones_is_reported_as_a_sentinel():
    values = list(RNG.integers(20, 900, 300)) + [0]
    col, d = decide_column("list price", pd.Series(values, dtype=float))
    assert d.doubtful and d.evidence["sentinel"] == 0
    assert "unknown" in d.reason
    counts = decide_column("reviews", pd.Series(list(RNG.integers(1, 900, 300)) + [0]))[1]
    assert "sentinel" not in counts.evidence  # a count of 0 is a count


def test_a_negative_code_among_non_negative_values_is_a_sentinel():
    values = list(RNG.integers(0, 50, 300)) + [-1, -1]
    assert decide_column("stock", pd.Series(values))[1].evidence["sentinel"] == -1


# ---- across columns: rules and derived columns -----------------------------------------------------
def shop(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    list_price = rng.integers(10, 500, n).astype(float)
    discount = rng.choice([0, 10, 20, 30, 40, 50], n)
    sale = np.round(list_price * (1 - discount / 100), 2)
    qty = rng.integers(1, 6, n)
    return pd.DataFrame({
        "Listing Price": list_price, "Sale Price": sale, "Discount": np.round(100 * (1 - sale / list_price)),
        "qty": qty, "total": np.round(sale * qty, 2), "weight": np.round(rng.uniform(0.1, 3, n), 2),
    })


def test_exact_relations_become_derived_columns():
    inf = infer_schema(shop())
    derived = {c.name: c.derived for c in inf.schema.columns if c.derived}
    assert derived == {"Discount": "100 * (1 - [Sale Price] / [Listing Price])", "total": "[Sale Price] * [qty]"}
    assert {c.name for c in inf.schema.learned_columns} == {"Listing Price", "Sale Price", "qty", "weight"}


def test_a_duplicated_column_is_derived_from_its_twin():
    df = pd.DataFrame({"a": RNG.normal(size=200).round(3)})
    df["b"] = df["a"]
    derived = [c for c in infer_schema(df).schema.columns if c.derived]
    assert [(c.name, c.derived) for c in derived] == [("b", "[a]")]


def test_a_count_that_sums_several_others_is_derived_from_them():
    flags = {f"badge_{k}": (RNG.uniform(size=300) < p).astype(int) for k, p in zip("abc", (0.3, 0.1, 0.02))}
    df = pd.DataFrame({"price": RNG.uniform(1, 50, 300).round(2), **flags, "express": 0})
    df["badges"] = df["badge_a"] + df["badge_b"] + df["badge_c"]
    df.loc[int(np.flatnonzero(df["badges"] == 2)[0]), "express"] = 1  # never above the sum, yet no part of it
    derived = {c.name: c.derived for c in infer_schema(df).schema.columns if c.derived}
    assert derived == {"badges": "[badge_a] + [badge_b] + [badge_c]"}


def test_unrelated_columns_are_not_derived():
    df = pd.DataFrame({c: RNG.uniform(1, 100, 300).round(2) for c in "abcd"})
    assert not [c for c in infer_schema(df).schema.columns if c.derived]


def test_rules_never_compare_a_price_with_a_percentage():
    rng = np.random.default_rng(2)
    price = rng.uniform(5, 200, 400).round(2)
    df = pd.DataFrame({"Listing Price": price, "Sale Price": (price * rng.uniform(0.5, 1, 400)).round(2),
                       "Discount %": np.floor(rng.uniform(0, 1, 400) * np.minimum(price, 60))})
    inf = infer_schema(df)
    rules = {str(r) for r in inf.schema.rules}
    assert "Listing Price >= Sale Price" in rules
    assert not any("Discount" in r for r in rules)  # it holds on every row, but a price is not a percentage
    assert any("'Listing Price >= Discount %'" in n and "money with percent" in n for n in inf.notes)


def test_unknown_units_are_compared_only_on_one_scale():
    base = RNG.uniform(10, 100, 300).round(2)
    df = pd.DataFrame({"a": base + 5, "b": base, "c": base / 1000})
    rules = {str(r) for r in infer_schema(df).schema.rules}
    assert "a >= b" in rules
    assert "b >= c" not in rules and "a >= c" not in rules


def test_the_decision_table_marks_doubtful_columns():
    df = shop()
    df["Listing Price"] = df["Listing Price"].where(df.index > 0, 0.0)
    table = infer_schema(df).table(explain=True)
    assert "? Listing Price" in table
    assert "evidence:" in table


# ---- the schema keeps what inference found -----------------------------------------------------------
def test_schema_round_trips_units_endings_levels_and_derived():
    schema = infer_schema(shop()).schema
    again = CatalogSchema.from_dict(schema.to_dict())
    assert again == schema


def test_schema_refuses_rules_across_units_and_bad_derived_columns():
    cols = {"p": {"type": "numeric", "unit": "money"}, "d": {"type": "numeric", "unit": "percent"}}
    with pytest.raises(SchemaError, match="money with percent|percent with money"):
        CatalogSchema.from_dict({"name": "x", "columns": cols, "rules": ["p >= d"]})
    with pytest.raises(SchemaError, match="not another column"):
        CatalogSchema.from_dict({"name": "x", "columns": {**cols, "t": {"type": "numeric", "derived": "[p] * [q]"}}})
    with pytest.raises(SchemaError, match="not allowed"):
        CatalogSchema.from_dict({"name": "x", "columns": {**cols, "t": {"type": "numeric", "derived": "__import__('os')"}}})
    with pytest.raises(SchemaError, match="endings"):
        CatalogSchema.from_dict({"name": "x", "columns": {"p": {"type": "numeric", "endings": {".99": 2}}}})


# ---- expressions ------------------------------------------------------------------------------------
def test_expressions_follow_precedence_and_give_missing_for_division_by_zero():
    df = pd.DataFrame({"a": [2.0, 3.0, np.nan], "b b": [4.0, 0.0, 1.0]})
    e = Expression.parse("100 * (1 - a / [b b])")
    assert e.columns == ["a", "b b"]
    got = e.evaluate(df)
    assert got[0] == pytest.approx(50.0)
    assert np.isnan(got[1]) and np.isnan(got[2])
    assert Expression.parse(str(e)) == e
    assert Expression.parse("a - (b - c)").evaluate(pd.DataFrame({"a": [10.0], "b": [4.0], "c": [1.0]}))[0] == 7.0
    assert Expression.parse("-a * 2").evaluate(pd.DataFrame({"a": [3.0]}))[0] == -6.0


@pytest.mark.parametrize("text", ["", "a +", "(a", "a ** b", "os.system('x')", "a; b", "(" * 100 + "a" + ")" * 100,
                                  "a + " * 200 + "a"])
def test_hostile_or_broken_expressions_are_refused(text):
    with pytest.raises(ExpressionError):
        Expression.parse(text)


# ---- the grid -----------------------------------------------------------------------------------------
def test_endings_are_drawn_in_the_real_shares_and_move_values_by_at_most_half_a_unit():
    shares = (("0.99", 0.6), ("0.00", 0.3))
    endings = Endings.from_shares(shares)
    x = np.random.default_rng(3).uniform(5, 500, 20_000)
    y = endings.snap(x, 1.0, 600.0, np.random.default_rng(4))
    assert np.abs(y - x).max() <= 0.5 + 1e-9
    cents = np.round((y - np.floor(y)) * 100).astype(int) % 100
    assert np.mean(cents == 99) == pytest.approx(0.6, abs=0.015)
    assert np.mean(cents == 0) == pytest.approx(0.3, abs=0.015)
    assert on_grid(y, shares).mean() == pytest.approx(0.9, abs=0.015)


def test_ranked_levels_keep_their_order_and_shares_and_decode_exactly():
    schema = CatalogSchema.from_dict({"name": "x", "columns": {
        "sold": {"type": "integer", "values": [1, 10, 100, 1000]}, "price": {"type": "numeric", "min": 0}}})
    df = pd.DataFrame({"sold": [1] * 60 + [10] * 30 + [100] * 9 + [1000], "price": np.arange(100.0)})
    grid = Grid.from_schema(schema, data=df)
    coded = grid.encode(df)["sold"].to_numpy()
    assert ((coded > 0) & (coded < 1)).all()
    assert all(coded[df["sold"] == a].max() < coded[df["sold"] == b].min() for a, b in [(1, 10), (10, 100), (100, 1000)])
    assert grid.decode(pd.DataFrame({"sold": coded, "price": df["price"]}), np.random.default_rng(0))["sold"].tolist() \
        == df["sold"].tolist()
    # a uniform draw comes back in the training shares; draws past either end take the end levels
    drawn = pd.DataFrame({"sold": np.random.default_rng(1).uniform(0, 1, 20_000), "price": 1.0})
    shares = grid.decode(drawn, np.random.default_rng(0))["sold"].value_counts(normalize=True)
    assert shares[1] == pytest.approx(0.6, abs=0.02) and shares[1000] == pytest.approx(0.01, abs=0.005)
    ends = grid.decode(pd.DataFrame({"sold": [-0.5, 1.7], "price": 1.0}), np.random.default_rng(0))["sold"].tolist()
    assert ends == [1, 1000]



def test_two_level_columns_are_learned_as_their_two_values():
    """A flag (0/1) is a category to the model: slice points would make it a column of distinct floats."""
    schema = CatalogSchema.from_dict({"name": "x", "columns": {
        "express": {"type": "integer", "values": [0, 1]}, "price": {"type": "numeric", "min": 0}}})
    df = pd.DataFrame({"express": [0] * 70 + [1] * 30, "price": np.arange(100.0)})
    grid = Grid.from_schema(schema, data=df)
    assert grid.binary("express")
    coded = grid.encode(df)["express"]
    assert sorted(coded.unique()) == [0, 1]
    assert grid.decode(pd.DataFrame({"express": coded, "price": df["price"]}), np.random.default_rng(0))["express"] \
        .tolist() == df["express"].tolist()

# ---- end to end: what the synthesizer writes keeps the grid, the levels and the relations ------------
def test_sampled_rows_keep_relations_levels_and_endings():
    from shopgen.synthesizer import CatalogSynthesizer

    rng = np.random.default_rng(5)
    df = shop(600, seed=5)
    df["Listing Price"] = df["Listing Price"] - np.where(rng.uniform(size=600) < 0.8, 0.01, 0.0)  # 80 % end in .99
    df["Sale Price"] = np.minimum(df["Sale Price"], df["Listing Price"])
    df["Discount"] = np.round(100 * (1 - df["Sale Price"] / df["Listing Price"]))
    df["total"] = np.round(df["Sale Price"] * df["qty"], 2)
    df["sold"] = rng.choice([1, 10, 100, 1000, 10000], 600)
    df["seller"] = [f"shop{'abcdefghij'[i % 10]}{'klmnopqrst'[(i // 10) % 10]}{'uvwxyz'[(i // 100) % 6]}" for i in range(600)]
    schema = infer_schema(df, "shop").schema
    assert {c.name for c in schema.columns if c.derived} == {"Discount", "total"}
    with pytest.warns(UserWarning, match="'seller'.*look like names"):
        synth = CatalogSynthesizer(schema, tabular="copula", show_progress=False).fit(df)
    out, stats = synth.sample(500, seed=1)
    assert out["total"].to_numpy() == pytest.approx(np.round(out["Sale Price"] * out["qty"], 2).to_numpy())
    assert out["Discount"].to_numpy() == pytest.approx(np.round(100 * (1 - out["Sale Price"] / out["Listing Price"])))
    assert set(out["sold"]) <= {1, 10, 100, 1000, 10000}
    real_grid = on_grid(df["Listing Price"].to_numpy(), schema.column("Listing Price").endings).mean()
    assert abs(on_grid(out["Listing Price"].to_numpy(), schema.column("Listing Price").endings).mean() - real_grid) <= 0.05
    assert (out["Listing Price"] >= out["Sale Price"]).all()
    assert stats.rare_level_copies["seller"] > 0


# ---- datetimes ----------------------------------------------------------------------------------------
def test_datetimes_are_read_in_their_layout_and_compared_in_rules():
    start = pd.Timestamp("2024-01-01") + pd.to_timedelta(RNG.integers(0, 300, 200), unit="D")
    end = start + pd.to_timedelta(RNG.integers(0, 3000, 200), unit="min")
    df = pd.DataFrame({"created": start.strftime("%Y-%m-%d %H:%M:%S"), "updated": end.strftime("%Y-%m-%d %H:%M:%S"),
                       "n": RNG.integers(0, 5, 200)})
    inf = infer_schema(df)
    created = inf.schema.column("created")
    assert (created.type, created.format, created.min) == ("datetime", "%Y-%m-%d %H:%M:%S", start.min().strftime("%Y-%m-%d %H:%M:%S"))
    assert "updated >= created" in {str(r) for r in inf.schema.rules}


def test_a_layout_where_day_and_month_both_fit_is_flagged():
    values = pd.Series(["01/02/2024", "03/04/2024", "05/06/2024", "11/12/2023"] * 10)
    col, d = decide_column("day", values)
    assert col.type == "datetime" and d.doubtful and "swapped" in d.reason
    col, d = decide_column("day", pd.Series(["31/01/2024", "03/04/2024"] * 10))  # 31 is no month
    assert (col.format, d.doubtful) == ("%d/%m/%Y", False)


def test_a_datetime_schema_needs_a_readable_format_and_bounds():
    with pytest.raises(SchemaError, match="need a format"):
        CatalogSchema.from_dict({"name": "x", "columns": {"t": {"type": "datetime"}}})
    with pytest.raises(SchemaError, match="not written in the format"):
        CatalogSchema.from_dict({"name": "x", "columns": {"t": {"type": "datetime", "format": "%Y-%m-%d", "min": "01/02/2024"}}})
    schema = CatalogSchema.from_dict({"name": "x", "columns": {"t": {"type": "datetime", "format": "%Y-%m-%d"}}})
    with pytest.raises(SchemaError, match="row 1 holds '2024/01/02'"):
        schema.check_frame(pd.DataFrame({"t": ["2024-01-01", "2024/01/02"]}))


def test_a_mostly_missing_number_keeps_its_shape_and_its_missing_share():
    from shopgen.synthesizer import CatalogSynthesizer

    rng = np.random.default_rng(7)
    n = 2000
    rating = rng.choice([1.0, 3.0, 4.0, 5.0], n, p=[0.15, 0.15, 0.2, 0.5])
    df = pd.DataFrame({"rating": np.where(rng.uniform(size=n) < 0.9, np.nan, rating),
                       "price": rng.uniform(10, 100, n).round(2)})
    schema = infer_schema(df).schema
    out = CatalogSynthesizer(schema, tabular="copula", show_progress=False).fit(df).sample(4000, seed=1).catalog
    assert out["rating"].isna().mean() == pytest.approx(0.9, abs=0.03)
    real = df["rating"].value_counts(normalize=True)
    drawn = out["rating"].value_counts(normalize=True)
    assert (drawn.reindex(real.index) - real).abs().max() < 0.06  # SDV's mean fill put most rated rows at 4.0


def test_sampled_datetimes_keep_the_real_resolution_and_order():
    from shopgen.synthesizer import CatalogSynthesizer

    rng = np.random.default_rng(8)
    start = pd.Timestamp("2011-01-03 08:00") + pd.to_timedelta(rng.integers(0, 300 * 24 * 60, 500), unit="min")
    end = start + pd.to_timedelta(rng.integers(0, 20 * 24 * 60, 500), unit="min")
    layout = "%Y-%m-%d %H:%M:%S"
    df = pd.DataFrame({"first_sale": start.strftime(layout), "last_sale": end.strftime(layout),
                       "units": rng.integers(1, 500, 500)})
    schema = infer_schema(df).schema
    out = CatalogSynthesizer(schema, tabular="copula", show_progress=False).fit(df).sample(400, seed=3).catalog
    for col in ("first_sale", "last_sale"):
        assert out[col].str.endswith(":00").all()  # whole minutes, as the real log
        assert pd.to_datetime(out[col], format=layout).notna().all()
    assert (out["last_sale"] >= out["first_sale"]).all()
