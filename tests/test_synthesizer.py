from __future__ import annotations

import dataclasses

import pytest
import torch

from shopgen.errors import ShopgenError, ValidationFailed
from shopgen.options import TextSampling
from shopgen.synthesizer import CatalogSynthesizer
from shopgen.validation import validate


def test_sample_returns_exactly_n_valid_rows_and_is_seeded(tiny_synth, sample_schema):
    synth, path = tiny_synth
    a, _ = synth.sample(150, seed=5)
    assert len(a) == 150 and list(a.columns) == sample_schema.names
    assert validate(a, sample_schema).success
    assert a["sku"].is_unique
    loaded = CatalogSynthesizer.load(path, show_progress=False)
    assert loaded.sample(150, seed=5).catalog.equals(a)
    assert not loaded.sample(150, seed=6).catalog.equals(a)


def test_rows_failing_validation_are_redrawn(tiny_synth, sample_schema, sample_df):
    """A schema tighter than the model's output: about a third of draws fail, yet n valid rows come out."""
    synth, _ = tiny_synth
    cap = float(sample_df["price"].quantile(0.7))
    tight = sample_schema.with_columns(price=dataclasses.replace(sample_schema.column("price"), max=cap))
    original = synth.schema
    synth.schema = tight
    try:
        rows, stats = synth.sample(200, seed=1)
    finally:
        synth.schema = original
    assert len(rows) == 200 and rows["price"].max() <= cap
    assert stats.invalid > 20 and stats.rounds >= 2
    assert validate(rows, tight).success
    from shopgen.text import SAMPLING_PRECISIONS
    from shopgen.text.precision import resolve

    assert stats.text_precision == resolve("auto", SAMPLING_PRECISIONS)  # what "auto" ran in, reported
    assert synth.sample(20, seed=1, text=TextSampling(precision="fp32")).stats.text_precision == "fp32"


def test_impossible_schema_fails_clearly(tiny_synth, sample_schema):
    synth, _ = tiny_synth
    impossible = sample_schema.with_columns(
        price=dataclasses.replace(sample_schema.column("price"), min=0.99, max=1.0)
    )
    original = synth.schema
    synth.schema = impossible
    try:
        with pytest.raises(ValidationFailed, match=r"only \d+ of 5 rows passed .* price: between 0.99 and 1.0"):
            synth.sample(5, seed=0)
    finally:
        synth.schema = original


def test_text_precision_reaches_the_text_training(sample_schema, sample_df):
    """`text_precision` (the CLI's --text-precision) goes through the synthesizer to the GPT's training."""
    synth = CatalogSynthesizer(sample_schema, tabular="copula", preset="fast", text_epochs=1, max_train_minutes=1 / 6,
                               text_precision="bf16", show_progress=False).fit(sample_df.sample(120, random_state=1))
    assert synth.text_model_.stats_.precision == "bf16" and synth.text_model_.stats_.steps > 0
    assert all(p.dtype == torch.float32 for p in synth.text_model_.model_.parameters())  # bf16 is the arithmetic only


def test_copy_guard_keeps_training_text_out_of_samples(tiny_synth, sample_df):
    """Guarded samples hold no text equal to, or sharing a rare 8-word span with, a training text
    (stock phrases that 1 % of the rows carry excepted, as the guard does)."""
    from shopgen.text.guard import BOILERPLATE_SHARE, CopyGuard

    synth, _ = tiny_synth
    seen = sample_df.sample(800, random_state=0)  # what tiny_synth was fitted on
    guards = {c: CopyGuard.from_texts(seen[c], BOILERPLATE_SHARE) for c in ("name", "description")}
    cold = TextSampling(temperature=0.3)  # a tiny model copies most where it is most sure: make copies likely
    unguarded, _ = synth.sample(200, seed=0, text=cold.replace(allow_copies=True))
    assert any(g.flags(unguarded[c].tolist()).any() for c, g in guards.items()), "the model does copy"
    guarded, stats = synth.sample(200, seed=0, text=cold)
    assert stats.copies_redrawn > 0
    for c, g in guards.items():
        assert not g.flags(guarded[c].tolist()).any(), c


def test_sampling_temperature_applies_to_one_call_only(tiny_synth):
    synth, _ = tiny_synth
    base = synth.sample(30, seed=4).catalog
    # this cold, a 20-second model writes mostly training texts: the guard may fail to redraw them all
    cold = synth.sample(30, seed=4, text=TextSampling(temperature=0.2, top_p=0.5, allow_copies=True)).catalog
    assert not cold["name"].equals(base["name"])
    unguided = synth.sample(30, seed=4, text=TextSampling(guidance=0.0)).catalog
    assert synth.text_model_.sampling.guidance > 0 and not unguided["name"].equals(base["name"])
    # guidance steers descriptions too
    every_field = synth.sample(30, seed=4, text=TextSampling(guide_all_fields=True)).catalog
    assert synth.text_model_.sampling.guided_fields == 1
    assert not every_field["description"].equals(base["description"])
    # the bundle's 4-token description lead unguided
    name_only = synth.sample(30, seed=4, text=TextSampling(guided_tokens=0)).catalog
    assert synth.text_model_.sampling.guided_tokens == 4
    assert not name_only["description"].equals(base["description"])
    assert synth.sample(30, seed=4).catalog.equals(base)
    with pytest.raises(ShopgenError, match="guidance -1.0 is below 0"):
        synth.sample(3, seed=4, text=TextSampling(guidance=-1.0))
    with pytest.raises(ShopgenError, match="guided_tokens -1 is below 0"):
        synth.sample(3, seed=4, text=TextSampling(guided_tokens=-1))


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_text_precision_applies_to_one_sample_call(tiny_synth, precision):
    """bf16 or int8 matmuls in the text decoder write (slightly) other text for the same seed, for that call
    only; an unknown precision is refused before anything is drawn."""
    synth, _ = tiny_synth
    fp32 = synth.sample(30, seed=4, text=TextSampling(precision="fp32")).catalog
    low = synth.sample(30, seed=4, text=TextSampling(precision=precision)).catalog
    assert len(low) == 30 and low["name"].notna().all()
    assert not low[["name", "description"]].equals(fp32[["name", "description"]])
    assert synth.sample(30, seed=4, text=TextSampling(precision="fp32")).catalog.equals(fp32)
    assert synth.sample(30, seed=4, text=TextSampling(precision=precision)).catalog.equals(low)
    with pytest.raises(ShopgenError, match="text_precision 'fp8' is unknown; use one of auto, fp32, bf16"):
        synth.sample(3, seed=4, text=TextSampling(precision="fp8"))


def test_text_workers_give_the_same_catalog_for_the_same_seed(tiny_synth):
    """Two worker processes write the text of 40 rows; the seed and the worker count fix it."""
    synth, _ = tiny_synth
    two = synth.sample(40, seed=5, text=TextSampling(workers=2)).catalog
    assert len(two) == 40 and two["name"].notna().all()
    assert synth.sample(40, seed=5, text=TextSampling(workers=2)).catalog.equals(two)
    assert not synth.sample(40, seed=5, text=TextSampling(workers=1)).catalog["name"].equals(two["name"])
    with pytest.raises(ShopgenError, match="text_workers 0 is below 1"):
        synth.sample(3, seed=4, text=TextSampling(workers=0))


def test_tabular_training_stops_at_the_time_budget_not_the_epoch_count(sample_schema, sample_df):
    """A preset is a time budget: an epoch count that would take hours ends when the budget does."""
    from shopgen.presets import TabularPreset
    from shopgen.tabular import TabularModel

    preset = TabularPreset(epochs=1_000_000, batch_size=100, max_seconds=3, max_categories=30)
    model = TabularModel("ctgan", preset, seed=0).fit(sample_schema, sample_df.head(400), show_progress=False)
    assert 1 <= model.epochs_ < 1_000_000
    assert len(model.sample(20, seed=1)) == 20
    explicit = TabularModel("ctgan", preset, epochs=2, seed=0).fit(sample_schema, sample_df.head(400), show_progress=False)
    assert explicit.epochs_ == 2  # epochs the user asks for are trained whatever the budget


def test_detection_tells_a_broken_relation_from_a_kept_one():
    """The yardstick of --tabular auto: 0.5 when rows cannot be told apart, near 1 when a relation is gone."""
    import numpy as np
    import pandas as pd

    from shopgen.detection import detection_auc

    rng = np.random.default_rng(0)

    def shop(n: int, tied: bool) -> pd.DataFrame:
        price = rng.lognormal(3, 0.7, n)
        shipping = price / 4 if tied else rng.permutation(rng.lognormal(3, 0.7, n)) / 4
        return pd.DataFrame({"price": price, "shipping": shipping, "size": rng.choice(["S", "M", "L"], n)})

    real = shop(600, True)
    assert detection_auc(real, shop(600, True), ["price", "shipping"]) < 0.6
    assert detection_auc(real, shop(600, False), ["price", "shipping"]) > 0.9


def test_auto_fits_every_candidate_and_keeps_the_least_detectable(sample_schema, sample_df):
    from shopgen.presets import TabularPreset
    from shopgen.tabular import CANDIDATES, TabularModel

    preset = TabularPreset(epochs=1_000_000, batch_size=100, max_seconds=4, max_categories=30)
    model = TabularModel("auto", preset, seed=0).fit(sample_schema, sample_df.head(500), show_progress=False)
    assert set(model.selection_) == set(CANDIDATES)
    assert all(0.0 <= auc <= 1.0 for auc in model.selection_.values())
    assert model.kind_ == min(model.selection_, key=model.selection_.get)
    assert model.kind == "auto" and len(model.sample(30, seed=1)) == 30
