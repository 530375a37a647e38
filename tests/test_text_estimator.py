"""The text model as a user fits it: prompts, tokenizer, training sequences, lead passes, the copy guard, fine-tuning."""

from __future__ import annotations

import copy
import unicodedata
from dataclasses import replace

import pandas as pd
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from shopgen.presets import PRESETS
from shopgen.text.estimator import TextModel
from shopgen.text.generate.sampler import SamplingConfig
from shopgen.text.guard import CopyGuard
from shopgen.text.loss import IGNORE
from shopgen.text.model import GPT
from shopgen.text.prompt import END, NULL, PAD, marker
from shopgen.text.tokenizer import control_token_ids, train_tokenizer


def test_prompt_writes_conditions_with_price_deciles(fmt, sample_df):
    row = sample_df.iloc[[0]]
    prompt = fmt.prompts(row)[0]
    assert prompt.startswith(marker("category") + row["category"].iloc[0] + marker("brand"))
    cheap = fmt.render_value("price", sample_df["price"].min())
    dear = fmt.render_value("price", sample_df["price"].max())
    assert (cheap, dear) == ("q0", "q9")
    assert fmt.render_value("brand", None) == NULL


def test_tokenizer_round_trips_text_and_keeps_markers_whole(tokenizer, fmt):
    text = "Crème brûlée set — 2× ₹499 &amp; “quotes”"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text
    for token in fmt.special_tokens:
        assert len(tokenizer(token, add_special_tokens=False)["input_ids"]) == 1


def test_training_sequences_put_loss_on_text_only(sample_schema, sample_df):
    m = TextModel(PRESETS["fast"].text, max_seconds=3, max_epochs=1).fit(sample_schema, sample_df.head(60), show_progress=False)
    prompt_ids = m.encode(m.format_.prompts(sample_df.head(2)))
    texts = {c: sample_df[c].head(2).tolist() for c in m.format_.text_columns}
    ids = {c: m.encode(texts[c]) for c in texts}
    (seq, labels, weights), _ = m.sequences(prompt_ids, texts, ids)
    assert labels[: len(prompt_ids[0]) + 1] == [IGNORE] * (len(prompt_ids[0]) + 1)
    labelled = [t for t in labels if t != IGNORE]
    assert labelled == ids["name"][0] + [m.token_id(END)] + ids["description"][0] + [m.token_id(END)]
    assert m.tokenizer_.decode(labelled[: len(ids["name"][0])]) == texts["name"][0]
    # short names weigh more per token than long descriptions, so each field's share of the loss is fairer
    assert [w for w, t in zip(weights, labels) if t == IGNORE] == [0.0] * (len(labels) - len(labelled))
    assert {w for w, t in zip(weights, labels) if t != IGNORE} == set(m.field_weights_.values())
    assert m.field_weights_["name"] > 1 > m.field_weights_["description"]


def test_unconditional_rows_teach_the_text_after_the_empty_prompt(sample_schema, sample_df):
    """Guidance contrasts against the empty prompt: only a model trained on such rows knows it."""
    import dataclasses

    from shopgen.errors import ShopgenError
    from shopgen.text.train import evaluate

    def fit(share: float) -> TextModel:
        preset = dataclasses.replace(PRESETS["fast"].text, unconditional_share=share)
        return TextModel(preset, max_seconds=60, max_epochs=12).fit(sample_schema, sample_df.head(300), show_progress=False)

    def empty_prompt_loss(m: TextModel) -> float:
        rows = sample_df.iloc[300:400]
        texts = {c: rows[c].tolist() for c in m.format_.text_columns}
        empty = m.encode([m.format_.empty_prompt()]) * len(rows)
        seqs = m.sequences(empty, texts, {c: m.encode(texts[c]) for c in texts})
        return evaluate(m.model_, seqs, 16, m.token_id(PAD))

    taught, plain = fit(0.5), fit(0.0)
    assert plain.sampling.guidance == 0 and taught.sampling.guidance > 0
    assert empty_prompt_loss(taught) < empty_prompt_loss(plain) - 0.1  # measured: 1.87 vs 2.09
    guided = SamplingConfig(guidance=1.5)
    taught.generate(sample_df.head(3), seed=0, show_progress=False, sampling=guided)
    with pytest.raises(ShopgenError, match="without unconditional rows"):
        plain.generate(sample_df.head(3), seed=0, show_progress=False, sampling=guided)


def test_fit_cuts_each_lead_its_presets_next_tokens_into_the_description(sample_schema, sample_df):
    """With `lead_next_tokens`, every lead pass TextModel.fit trains is that many description tokens (and
    the description's marker) longer: one epoch of the same rows trains exactly that many more tokens."""

    from shopgen.text.estimator import rare_lead_repeats

    df = sample_df.dropna(subset=["description"]).head(150)  # under 200 rows: no validation split
    preset = replace(PRESETS["fast"].text, lead_repeats=2, unconditional_share=0.0, batch_size=16)
    repeats = rare_lead_repeats(sample_schema, df, sample_schema.conditions, preset)

    def trained_tokens(next_tokens: int) -> int:
        p = replace(preset, lead_next_tokens=next_tokens)
        return TextModel(p, max_epochs=1, max_seconds=120).fit(sample_schema, df, show_progress=False).stats_.tokens

    assert trained_tokens(4) - trained_tokens(0) == sum(repeats) * (1 + 4)


def test_rows_of_rare_condition_levels_get_more_lead_passes(sample_schema, sample_df):
    """A category with 10 % of the rows (brand shared by all) gets 3x the median row's lead passes."""
    from dataclasses import replace

    from shopgen.text.estimator import rare_lead_repeats

    df = sample_df.head(100).assign(category=["Books"] * 90 + ["Garden"] * 10, brand="Acme")
    preset = replace(PRESETS["small"].text, lead_repeats=3, rare_lead_boost=3.0)
    repeats = rare_lead_repeats(sample_schema, df, ["category", "brand", "price"], preset)
    # rarity: inverse geometric mean of level shares over the two categorical conditions, over the median row's
    assert repeats == [3] * 90 + [round(3 * (0.9 / 0.1) ** 0.5)] * 10
    capped = rare_lead_repeats(sample_schema, df, ["category", "brand"], replace(preset, rare_lead_boost=1.0))
    assert capped == [3] * 90 + [6] * 10
    assert rare_lead_repeats(sample_schema, df, ["category"], replace(preset, rare_lead_boost=0.0)) == [3] * 100


def test_fit_trains_each_row_with_its_own_lead_passes(sample_schema, sample_df):
    """TextModel.fit hands train_lm the per-row counts: one epoch is the rows plus all their leads."""
    import math
    from dataclasses import replace

    from shopgen.text.estimator import rare_lead_repeats

    df = sample_df.head(150).assign(category=["Books"] * 140 + ["Garden"] * 10)  # under 200 rows: no validation split
    preset = replace(PRESETS["fast"].text, lead_repeats=2, rare_lead_boost=3.0, batch_size=16)
    repeats = rare_lead_repeats(sample_schema, df, sample_schema.conditions, preset)
    assert sum(repeats) > 2 * len(df)
    model = TextModel(preset, max_epochs=1, max_seconds=120).fit(sample_schema, df, show_progress=False)
    assert model.stats_.steps == math.ceil((len(df) + sum(repeats)) / 16)


def test_long_texts_are_cut_at_a_sentence_end(sample_schema, sample_df):
    m = TextModel(PRESETS["fast"].text, max_seconds=3, max_epochs=1).fit(sample_schema, sample_df.head(60), show_progress=False)
    text = "First sentence is here. Second one follows it. Third sentence is long enough to be cut off"
    ids = m.encode([text])
    cut = m.trim([text], ids, len(ids[0]) - 3)
    assert m.tokenizer_.decode(cut[0]) == "First sentence is here. Second one follows it."


def test_copy_guard_normalises():
    guard = CopyGuard.from_texts(["Acme Trail Shoe", None, "Other"])
    assert guard.copies(["acme  trail shoe!", "Acme Trail Shoes", None]) == [True, False, False]


def test_copy_guard_flags_rare_long_spans_but_not_boilerplate():
    unique = "the walnut handle was carved by hand in our small workshop near the river"
    boiler = "actual packaging may vary from the image shown on this page"
    guard = CopyGuard.from_texts([unique, f"Mug. {boiler}", f"Pan. {boiler}"])
    fresh = "a new pan whose walnut handle was carved by hand in our small workshop"
    assert guard.overlaps([fresh, f"Kettle. {boiler}", "walnut handle was carved by hand"]) == [True, False, False]
    assert guard.flags([fresh, unique, "short"]).tolist() == [True, True, False]
    exact, spans = guard.to_arrays()
    again = CopyGuard(exact.tolist(), spans.tolist())
    assert again.flags([fresh, unique]).tolist() == [True, True]


def test_fine_tune_from_a_local_checkpoint(tmp_path, sample_schema, sample_df, fmt):
    """--text-base: a checkpoint the test saves itself (nothing is fetched); markers get added to it."""
    base_tok = train_tokenizer(sample_df["name"].tolist(), 512, [PAD, END])
    base = GPT2LMHeadModel(GPT2Config(vocab_size=len(base_tok), n_positions=256, n_embd=32, n_layer=1, n_head=2))
    base.save_pretrained(tmp_path / "base")
    base_tok.save_pretrained(tmp_path / "base")
    m = TextModel(PRESETS["fast"].text, base=str(tmp_path / "base"), max_seconds=5, max_epochs=1)
    m.fit(sample_schema, sample_df.head(200), show_progress=False)
    assert len(m.tokenizer_) > len(base_tok)
    assert isinstance(m.model_, GPT) and m.model_.transformer.wte.weight.shape[0] == len(m.tokenizer_)
    out, copied, _ = m.generate(sample_df.head(8), seed=0, show_progress=False)
    assert out["name"].map(lambda s: isinstance(s, str) and 0 < len(s) <= 120).all()
    m.save_pretrained(tmp_path / "tuned")
    again = TextModel.from_pretrained(tmp_path / "tuned", PRESETS["fast"].text)
    assert again.stats_.budget_s == 5 and again.stats_.steps == m.stats_.steps
    assert again.generate(sample_df.head(8), seed=0, show_progress=False)[0].equals(out)
    assert isinstance(copied, pd.Series)


def test_fine_tune_a_checkpoint_of_another_architecture(tmp_path, sample_schema, sample_df):
    """A base that is not GPT-2 (a tiny Llama the test saves) trains through its own forward and samples
    through Hugging Face's cache, seeded, and round-trips through save_pretrained."""
    base_tok = train_tokenizer(sample_df["name"].tolist(), 512, [PAD, END])
    torch.manual_seed(0)
    base = LlamaForCausalLM(LlamaConfig(vocab_size=len(base_tok), hidden_size=32, intermediate_size=64,
                                        num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=256))
    base.save_pretrained(tmp_path / "base")
    base_tok.save_pretrained(tmp_path / "base")
    m = TextModel(PRESETS["fast"].text, base=str(tmp_path / "base"), max_seconds=5, max_epochs=1)
    m.fit(sample_schema, sample_df.head(120), show_progress=False)
    assert not isinstance(m.model_, GPT) and m.stats_.steps > 0
    assert m.sampling_precision(m.sampling) == "fp32"  # the narrower matmuls are the slot decoder's
    out, _, _ = m.generate(sample_df.head(6), seed=0, show_progress=False)
    assert out["name"].map(lambda s: isinstance(s, str) and len(s) > 0).all()
    m.save_pretrained(tmp_path / "tuned")
    again = TextModel.from_pretrained(tmp_path / "tuned", PRESETS["fast"].text)
    assert again.generate(sample_df.head(6), seed=0, show_progress=False)[0].equals(out)


def test_copy_guard_lets_stock_phrases_through_only_when_asked():
    """A description that 1 % of the rows carry ("India") is the catalog's stock phrase, not a record."""
    texts = ["India"] * 6 + [f"product number {i}" for i in range(94)]
    assert CopyGuard.from_texts(texts).copies(["india", "product number 3"]) == [True, True]
    guard = CopyGuard.from_texts(texts, boilerplate_share=0.01)
    assert guard.copies(["india", "product number 3"]) == [False, True]
    assert CopyGuard.from_texts(texts[:4] + texts[6:], boilerplate_share=0.01).copies(["india"]) == [True]


def test_generated_text_holds_no_control_characters_even_where_the_model_favours_them(tiny_synth, sample_df):
    """The byte alphabet's 256 bytes are all tokens; a bare carriage return or NUL in a name breaks the csv
    it is written to (a CI run read 16,436 rows from a 100-row sample), so the sampler bans them."""
    synth, _ = tiny_synth
    text = copy.deepcopy(synth.text_model_)
    tok = text.tokenizer_
    controls = control_token_ids(tok)
    assert {tok.convert_tokens_to_ids(c) for c in ("\u010d", "\u0100")} <= set(controls)  # byte-level "\r", NUL
    assert not {tok.convert_tokens_to_ids(c) for c in ("\u010a", "\u0109", "a")} & set(controls)  # "\n", tab
    with torch.no_grad():  # every control token scores three times the end token: ends become "\r" and such
        weight = text.model_.transformer.wte.weight  # also the output head
        weight[controls] = 3 * weight[text.token_id(END)]
    texts, _, _ = text.generate(sample_df.head(40), seed=0, allow_copies=True, show_progress=False)
    cells = [v for v in texts.to_numpy().ravel() if isinstance(v, str)]
    assert len(cells) >= 40
    assert not [v for v in cells if any(ch not in "\n\t" and unicodedata.category(ch) == "Cc" for ch in v)]
