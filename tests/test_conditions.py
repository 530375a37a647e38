from __future__ import annotations

import copy

import pandas as pd
import pytest

from shopgen.conditions import matches, parse_where
from shopgen.errors import ShopgenError
from shopgen.validation import validate


def test_parse_where_equality_ranges_and_open_ends(sample_schema):
    got = parse_where(["category=Toys", "price=10..50", "rating=4..", "units_sold=..100", "list_price=20"], sample_schema)
    assert got == {"category": "Toys", "price": (10.0, 50.0), "rating": (4.0, 5), "units_sold": (0, 100.0),
                   "list_price": (20.0, 20.0)}


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("colour=red", "no column 'colour'"),
        ("name=Shoe", "text columns are generated"),
        ("sku=SKU-1", "id columns are generated"),
        ("price=cheap", "price is numeric"),
        ("price=50..10", "empty range"),
        ("price=5000..6000", "outside the schema's range"),
        ("category=Spaceships", "not one of the schema's values"),
        ("category", "not COLUMN=VALUE"),
    ],
)
def test_bad_conditions_are_refused(sample_schema, where, message):
    with pytest.raises(ShopgenError, match=message):
        parse_where([where], sample_schema)


def test_matches():
    df = pd.DataFrame({"c": ["a", "b", "a"], "p": [1.0, 5.0, 9.0]})
    assert matches(df, {"c": "a", "p": (0, 5)}).tolist() == [True, False, False]


def test_conditioned_rows_all_meet_the_condition_even_for_a_rare_category(tiny_synth, sample_schema, sample_df):
    synth, _ = tiny_synth
    rare = sample_df["category"].value_counts().idxmin()  # about 3 % of the catalog
    rows = synth.sample(60, seed=2, conditions={"category": rare, "price": (5, 80)}).catalog
    assert len(rows) == 60 and (rows["category"] == rare).all()
    assert rows["price"].between(5, 80).all()
    assert validate(rows, sample_schema).success
    assert 0 < synth.tabular_model_.last_acceptance_ < 0.5  # rare: most draws were filtered away
    assert synth.sample(60, seed=2, conditions={"category": rare, "price": (5, 80)}).catalog.equals(rows)


def test_condition_on_a_rare_brand_grouped_away_during_training_is_pinned(tiny_synth):
    synth, _ = tiny_synth
    model = synth.tabular_model_
    values, probs = model.rare_["brand"]
    brand = values[-1]  # among the rarest brands
    rows = synth.sample(20, seed=0, conditions={"brand": brand}).catalog
    assert (rows["brand"] == brand).all()
    # Pinned, acceptance is the model's share of "other" rows (a few %); found by rejection it would be
    # that share times the brand's share inside "other" (probs[-1], under 1 %): about 0.02 %.
    assert model.last_acceptance_ > 0.01 > 0.05 * probs[-1]


def test_rare_levels_are_drawn_back_within_their_parent(tiny_synth, sample_df):
    """A brand grouped away in training comes back from the brands of the row's parent (its aisle)."""
    synth, _ = tiny_synth
    # Without derivation: here brand fixes category, and deriving category would make any brand's pair look seen.
    model = copy.copy(synth.tabular_model_)
    model.derived_ = {}
    parent, table = model.rare_parents_["brand"]
    rows = model.sample(1500, seed=3)
    rare = rows[rows["brand"].isin(model.rare_["brand"][0]) & rows[parent].isin(list(table))]
    assert len(rare) > 20
    assert all(b in table[p][0] for b, p in zip(rare["brand"], rare[parent]))
    seen = set(zip(sample_df["brand"], sample_df[parent]))
    assert sum((b, p) in seen for b, p in zip(rare["brand"], rare[parent])) == len(rare)


def test_every_drawn_level_is_one_its_parent_had_in_training(tiny_synth, sample_df):
    """CTGAN pairs common brands with any aisle; those pairs are redrawn, so the text model is never told
    of a brand in an aisle that never sold it."""
    synth, _ = tiny_synth
    model = copy.copy(synth.tabular_model_)
    model.derived_ = {}  # brand fixes category here: derivation alone would make every pair a seen one
    parent, _ = model.coherent_["brand"]
    seen = set(zip(sample_df[parent], sample_df["brand"]))

    def unseen(rows: pd.DataFrame) -> int:
        return sum((p, b) not in seen for p, b in zip(rows[parent], rows["brand"]) if pd.notna(b))

    assert unseen(model.sample(1500, seed=3)) == 0
    model.coherent_ = {}
    assert unseen(model.sample(1500, seed=3)) > 0


def test_unknown_or_impossible_conditions_fail_clearly(tiny_synth):
    synth, _ = tiny_synth
    with pytest.raises(ShopgenError, match="never saw this value"):
        synth.sample(5, conditions={"brand": "Nonexistent Brand Co"})
    with pytest.raises(ShopgenError, match="rarely produces such rows"):
        synth.sample(5, conditions={"category": "Books", "price": (2400, 2500)})


def test_a_column_another_one_fixes_is_derived_and_conditions_on_it_still_work(tiny_synth, sample_df):
    """The sample catalog's brand fixes its category: sampled pairs are training pairs, with or without a condition."""
    synth, _ = tiny_synth
    model = synth.tabular_model_
    source, mapping, _ = model.derived_["category"]
    assert source == "brand"
    seen = set(zip(sample_df["brand"], sample_df["category"]))
    plain = model.sample(500, seed=5)
    assert all(pair in seen for pair in zip(plain["brand"], plain["category"]))
    rare = sample_df["category"].value_counts().index[-1]
    rows = synth.sample(30, seed=2, conditions={"category": rare}).catalog
    assert (rows["category"] == rare).all()
    assert all(pair in seen for pair in zip(rows["brand"], rows["category"]))
