from __future__ import annotations

import numpy as np

from shopgen.validation import expectations, validate


def test_sample_catalog_passes_every_expectation(sample_schema, sample_df):
    result = validate(sample_df, sample_schema)
    assert result.success, result.summary()
    assert result.n_expectations == len(expectations(sample_schema)) >= 25


def test_each_broken_row_is_reported_by_its_expectation(sample_schema, sample_df):
    df = sample_df.head(50).copy()
    df.loc[1, "price"] = 99999.0                      # above max
    df.loc[2, "list_price"] = df.loc[2, "price"] - 1  # breaks list_price >= price
    df.loc[3, "name"] = None                          # null in a non-nullable column
    df.loc[4, "sku"] = "BAD-1"                        # pattern
    df.loc[5, "sku"] = df.loc[6, "sku"]               # duplicate primary key
    df.loc[7, "description"] = "x" * 601              # too long
    df.loc[8, "category"] = "Spaceships"              # unknown level
    df.loc[9, "rating"] = 4.25                        # too many decimals
    df.loc[10, "rating"] = None                       # nullable: fine
    result = validate(df, sample_schema)
    assert not result.success
    assert set(result.bad_rows.tolist()) == {1, 2, 3, 4, 5, 6, 7, 8, 9}
    failures = result.failures
    assert failures["price: between 0.99 and 2500"] == 1
    assert failures["rule list_price >= price"] == 2  # row 1 (price 99999) breaks it too
    assert failures["name: not null"] == 1
    assert failures["sku: unique"] == 2
    assert failures["category: one of 10 values"] == 1
    assert failures["rating: at most 1 decimals"] == 1
    assert failures["description: length 1..600"] == 1


def test_a_missing_column_is_one_failure_for_all_rows(sample_schema, sample_df):
    result = validate(sample_df.head(20).drop(columns="brand"), sample_schema)
    assert result.failures == {"brand: exists": 20}
    assert np.array_equal(result.bad_rows, np.arange(20))
