"""Text metrics must tell faithful text from shuffled text, copies from new text, and varied from repeated."""

from __future__ import annotations

import pytest

from shopgen.evaluation.text import consistency, copying, distinct_n, diversity, price_coherence, text_metrics


@pytest.fixture(scope="module")
def split(sample_df):
    train = sample_df.sample(frac=0.8, random_state=0)
    return train, sample_df.drop(train.index)


def test_consistency_is_high_for_real_text_and_drops_when_text_is_shuffled(split, sample_schema):
    train, hold = split
    shuffled = hold.copy()
    for col in ("name", "description"):
        shuffled[col] = hold[col].sample(frac=1, random_state=1).to_numpy()
    faithful = consistency(train, hold, hold, sample_schema)
    broken = consistency(train, hold, shuffled, sample_schema)
    assert faithful["consistency_category"] == faithful["consistency_category_real"] > 0.9
    assert broken["consistency_category"] < 0.4
    assert broken["consistency_brand"] < faithful["consistency_brand"] - 0.3


def test_price_coherence_tracks_price_words(split, sample_schema):
    train, hold = split
    real = price_coherence(train, hold, hold, sample_schema)
    shuffled = hold.assign(price=hold["price"].sample(frac=1, random_state=2).to_numpy())
    assert real["price_coherence"] > 0.5
    assert abs(price_coherence(train, hold, shuffled, sample_schema)["price_coherence"]) < 0.2


def test_copying_counts_exact_and_span_copies(split, sample_schema):
    train, hold = split
    copies = copying(train, train.head(50), sample_schema)
    assert copies["copy_exact_name"] == 1.0
    novel = copying(train, hold, sample_schema)
    assert novel["copy_exact_name"] < 0.05


def test_diversity_sees_repetition(split, sample_schema):
    _, hold = split
    repeated = hold.assign(name=hold["name"].iloc[0], description=hold["description"].iloc[0])
    scores = diversity(hold, repeated, sample_schema)
    assert scores["distinct2_name"] < 0.05 < scores["distinct2_name_real"]
    assert scores["length_ks_description"] > 0.5
    assert distinct_n(["a b c", "a b d"], 2) == 3 / 4


def test_text_metrics_report_each_score_with_its_real_reference(split, sample_schema):
    train, hold = split
    scores = text_metrics(train, hold, hold, sample_schema)
    for key in ("consistency_category", "price_coherence", "copy_exact_name", "distinct2_name"):
        assert key in scores and f"{key}_real" in scores
