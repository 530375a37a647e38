from __future__ import annotations

import pandas as pd
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from shopgen.presets import PRESETS
from shopgen.text.guard import CopyGuard
from shopgen.text.model import TextModel
from shopgen.text.prompt import END, NULL, PAD, PromptFormat, marker
from shopgen.text.sampler import FieldSpec, SamplingConfig, generate_fields
from shopgen.text.tokenizer import train_tokenizer
from shopgen.text.train import IGNORE


@pytest.fixture(scope="module")
def fmt(sample_schema, sample_df) -> PromptFormat:
    return PromptFormat.fit(sample_schema, sample_df)


@pytest.fixture(scope="module")
def tokenizer(fmt, sample_df):
    texts = sample_df["name"].tolist() + sample_df["description"].tolist() + fmt.prompts(sample_df)
    return train_tokenizer(texts, 1024, fmt.special_tokens)


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


def _tiny_lm(vocab: int, seed: int = 0, **config) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=vocab, n_positions=128, n_embd=32, n_layer=1, n_head=2, **config)
    return GPT2LMHeadModel(cfg).eval()


def _generate(model, tokenizer, prompts, caps, cfg, seed):
    tid = tokenizer.convert_tokens_to_ids
    fields = [FieldSpec(tid(marker("name")), caps[0], False), FieldSpec(tid(marker("description")), caps[1], True)]
    return generate_fields(
        model, prompts, fields, end_id=tid(END), pad_id=tid(PAD), null_id=tid(NULL), banned_ids=[tid(PAD)],
        cfg=cfg, generator=torch.Generator().manual_seed(seed),
    )


def test_generation_respects_caps_seed_and_batching(tokenizer, fmt, sample_df):
    model = _tiny_lm(len(tokenizer))
    prompts = tokenizer(fmt.prompts(sample_df.head(10)), add_special_tokens=False)["input_ids"]
    cfg = SamplingConfig(batch_size=4)
    out = _generate(model, tokenizer, prompts, (6, 9), cfg, seed=1)
    assert len(out) == 10
    for name, desc in out:  # every field stops at its cap at the latest, and is never empty
        assert 1 <= len(name) <= 5 and 1 <= len(desc) <= 8
        assert tokenizer.convert_tokens_to_ids(END) not in name + desc
    assert _generate(model, tokenizer, prompts, (6, 9), cfg, seed=1) == out
    assert _generate(model, tokenizer, prompts, (6, 9), cfg, seed=2) != out


@pytest.mark.parametrize("slots", [True, False], ids=["continuous-slots", "hf-cache-fallback"])
def test_batched_kv_cache_generation_equals_one_row_at_a_time(tokenizer, fmt, sample_df, slots):
    """Padding, refilled slots, positions and the cache must not change what a row generates (greedy)."""
    from shopgen.text.decoder import SlotDecoder

    model = _tiny_lm(len(tokenizer), seed=3, scale_attn_by_inverse_layer_idx=not slots)
    assert SlotDecoder.supports(model) == slots
    prompts = tokenizer(fmt.prompts(sample_df.head(6)), add_special_tokens=False)["input_ids"]
    assert len({len(p) for p in prompts}) > 1, "prompts of different lengths exercise the padding"
    greedy = SamplingConfig(top_k=1, batch_size=4)  # 6 rows through 4 slots: two rows wait for a free slot
    batched = _generate(model, tokenizer, prompts, (8, 8), greedy, seed=0)
    single = [_generate(model, tokenizer, [p], (8, 8), greedy, seed=0)[0] for p in prompts]
    assert batched == single


def test_generation_stops_at_end_token(tokenizer, fmt, sample_df):
    """A model whose head always prefers <end> after the first token writes one-token fields."""
    model = _tiny_lm(len(tokenizer))
    with torch.no_grad():
        model.lm_head.weight.zero_()
        model.lm_head.weight[tokenizer.convert_tokens_to_ids(END)] = 1.0
        model.transformer.ln_f.bias.fill_(1.0)
        model.transformer.ln_f.weight.zero_()
    prompts = tokenizer(fmt.prompts(sample_df.head(3)), add_special_tokens=False)["input_ids"]
    out = _generate(model, tokenizer, prompts, (50, 50), SamplingConfig(), seed=0)
    assert all(len(name) == 1 and len(desc) == 1 for name, desc in out)


def test_training_sequences_put_loss_on_text_only(sample_schema, sample_df):
    m = TextModel(PRESETS["fast"].text, max_seconds=3, max_epochs=1).fit(sample_schema, sample_df.head(60), show_progress=False)
    prompt_ids = m._encode(m.format_.prompts(sample_df.head(2)))
    texts = {c: sample_df[c].head(2).tolist() for c in m.format_.text_columns}
    ids = {c: m._encode(texts[c]) for c in texts}
    (seq, labels), _ = m._sequences(prompt_ids, texts, ids)
    assert labels[: len(prompt_ids[0]) + 1] == [IGNORE] * (len(prompt_ids[0]) + 1)
    labelled = [t for t in labels if t != IGNORE]
    assert labelled == ids["name"][0] + [m._id(END)] + ids["description"][0] + [m._id(END)]
    assert m.tokenizer_.decode(labelled[: len(ids["name"][0])]) == texts["name"][0]


def test_loss_on_labelled_positions_only_equals_the_full_hf_loss():
    """Training projects only the labelled positions onto the vocabulary; the loss must not change."""
    from shopgen.text.train import _loss

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=300, n_positions=64, n_embd=32, n_layer=2, n_head=2)).eval()
    ids = torch.randint(0, 300, (3, 20))
    mask = torch.ones_like(ids)
    mask[1, 15:] = 0  # padding
    labels = ids.clone()
    labels[:, :6] = IGNORE  # the prompt
    labels[mask == 0] = IGNORE
    full = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    assert torch.allclose(_loss(model, ids, mask, labels), full, rtol=1e-6, atol=1e-6)


def test_long_texts_are_cut_at_a_sentence_end(sample_schema, sample_df):
    m = TextModel(PRESETS["fast"].text, max_seconds=3, max_epochs=1).fit(sample_schema, sample_df.head(60), show_progress=False)
    text = "First sentence is here. Second one follows it. Third sentence is long enough to be cut off"
    ids = m._encode([text])
    cut = m._trim([text], ids, len(ids[0]) - 3)
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
    assert m.model_.get_input_embeddings().weight.shape[0] == len(m.tokenizer_)
    out, copied, _ = m.generate(sample_df.head(8), seed=0, show_progress=False)
    assert out["name"].map(lambda s: isinstance(s, str) and 0 < len(s) <= 120).all()
    m.save_pretrained(tmp_path / "tuned")
    again = TextModel.from_pretrained(tmp_path / "tuned", PRESETS["fast"].text)
    assert again.generate(sample_df.head(8), seed=0, show_progress=False)[0].equals(out)
    assert isinstance(copied, pd.Series)


def test_slot_decoder_matches_the_hf_forward():
    """Each slot's logits equal the model's own forward on that row's sequence: prefill, steps, refill."""
    from shopgen.text.decoder import SlotDecoder

    model = _tiny_lm(300, seed=5)
    assert SlotDecoder.supports(model)
    torch.manual_seed(1)
    seqs = [torch.randint(0, 300, (n,)).tolist() for n in (5, 2, 7)]
    dec = SlotDecoder(model, 3, 20)
    dec.prefill(torch.arange(3), seqs)

    def reference(seq):
        with torch.no_grad():
            return model(input_ids=torch.tensor([seq])).logits[0, -1]

    for step in range(4):
        if step == 2:  # slot 1 takes a new row, as when a row finishes and the next one waits
            seqs[1] = torch.randint(0, 300, (4,)).tolist()
            dec.prefill(torch.tensor([1]), [seqs[1]])
        feed = torch.randint(0, 300, (3,))
        logits = dec.step(feed)
        for slot in range(3):
            seqs[slot] = seqs[slot] + [int(feed[slot])]
            assert torch.allclose(logits[slot], reference(seqs[slot]), atol=1e-4), (step, slot)


def test_copy_guard_lets_stock_phrases_through_only_when_asked():
    """A description that 1 % of the rows carry ("India") is the catalog's stock phrase, not a record."""
    texts = ["India"] * 6 + [f"product number {i}" for i in range(94)]
    assert CopyGuard.from_texts(texts).copies(["india", "product number 3"]) == [True, True]
    guard = CopyGuard.from_texts(texts, boilerplate_share=0.01)
    assert guard.copies(["india", "product number 3"]) == [False, True]
    assert CopyGuard.from_texts(texts[:4] + texts[6:], boilerplate_share=0.01).copies(["india"]) == [True]


def test_slot_decoder_chunked_attention_matches_the_hf_forward():
    """Slots of very different lengths attend in chunks (short slots skip long ones' span): same logits."""
    from shopgen.text.decoder import SlotDecoder, _chunks

    model = _tiny_lm(300, seed=6)
    torch.manual_seed(2)
    seqs = [torch.randint(0, 300, (n,)).tolist() for n in (3, 70, 5, 40, 9, 2, 66, 20)]
    dec = SlotDecoder(model, len(seqs), 80)
    dec.prefill(torch.arange(len(seqs)), seqs)
    assert len(_chunks(dec.lengths)) > 1
    feed = torch.randint(0, 300, (len(seqs),))
    logits = dec.step(feed)
    with torch.no_grad():
        for slot, seq in enumerate(seqs):
            ref = model(input_ids=torch.tensor([seq + [int(feed[slot])]])).logits[0, -1]
            assert torch.allclose(logits[slot], ref, atol=1e-4), slot
