"""Writing text: the batched sampler, the slot and HF decoders, guidance, and the worker processes."""

from __future__ import annotations

import functools
import multiprocessing
import os
from dataclasses import replace

import pytest
import torch
from textkit import ROW_EXACT, generate_with, native_kernel, sharded, tiny_hf, tiny_lm
from transformers import GPT2Config, GPT2LMHeadModel

from shopgen.text.generate.sampler import FieldSpec, SamplingConfig
from shopgen.text.model import GPT
from shopgen.text.prompt import END


def test_generation_respects_caps_seed_and_batching(tokenizer, fmt, sample_df):
    model = tiny_lm(len(tokenizer))
    prompts = tokenizer(fmt.prompts(sample_df.head(10)), add_special_tokens=False)["input_ids"]
    cfg = SamplingConfig(batch_size=4)
    out = generate_with(model, tokenizer, prompts, (6, 9), cfg, seed=1)
    assert len(out) == 10
    for name, desc in out:  # every field stops at its cap at the latest, and is never empty
        assert 1 <= len(name) <= 5 and 1 <= len(desc) <= 8
        assert tokenizer.convert_tokens_to_ids(END) not in name + desc
    assert generate_with(model, tokenizer, prompts, (6, 9), cfg, seed=1) == out
    assert generate_with(model, tokenizer, prompts, (6, 9), cfg, seed=2) != out


@pytest.mark.parametrize("guidance,guided_fields,guided_tokens", [(0.0, 1, 0), (1.5, 1, 0), (1.5, 1, 3), (1.5, None, 0)],
                         ids=["unguided", "guided-name", "guided-name-and-lead", "guided-all"])
@pytest.mark.parametrize("slots", [True, False], ids=["continuous-slots", "hf-cache-fallback"])
def test_batched_kv_cache_generation_equals_one_row_at_a_time(tokenizer, fmt, sample_df, slots, guidance, guided_fields,
                                                              guided_tokens, attention):
    """Padding, refilled slots, positions, the cache and shadows dropped after the name must not change
    what a row generates (greedy)."""
    from shopgen.text.generate.decoder import SlotDecoder

    # GPT-2 with attention scaled by depth is a variant the package's GPT does not compute: HF's own runs it
    model = tiny_lm(len(tokenizer), seed=3) if slots else tiny_hf(len(tokenizer), seed=3, scale_attn_by_inverse_layer_idx=True)
    assert SlotDecoder.supports(model) == slots
    prompts = tokenizer(fmt.prompts(sample_df.head(6)), add_special_tokens=False)["input_ids"]
    empty = tokenizer(fmt.empty_prompt(), add_special_tokens=False)["input_ids"]
    assert len({len(p) for p in prompts}) > 1, "prompts of different lengths exercise the padding"
    greedy = SamplingConfig(top_k=1, batch_size=4, guidance=guidance, guided_fields=guided_fields,
                            guided_tokens=guided_tokens, precision=ROW_EXACT)  # 6 rows, 4 slots
    batched = generate_with(model, tokenizer, prompts, (8, 8), greedy, seed=0, empty=empty)
    single = [generate_with(model, tokenizer, [p], (8, 8), greedy, seed=0, empty=empty)[0] for p in prompts]
    assert batched == single


def test_guidance_is_the_same_on_both_decoders_and_changes_the_text(tokenizer, fmt, sample_df):
    """The slot decoder's shadow slots and the HF path's shadow rows give the same guided greedy text.
    Guiding the first field writes the same names as guiding every field; guiding the description's
    first 3 tokens too writes those 3 as guiding every field does, and then goes its own way; without
    them each description follows its name unguided from the start."""
    from shopgen.text.generate.decoder import SlotDecoder

    fallback = tiny_hf(len(tokenizer), seed=5)  # Hugging Face's model: the HF-cache path
    model = GPT.from_hf(fallback)
    assert SlotDecoder.supports(model) and not SlotDecoder.supports(fallback)
    prompts = tokenizer(fmt.prompts(sample_df.head(6)), add_special_tokens=False)["input_ids"]
    empty = tokenizer(fmt.empty_prompt(), add_special_tokens=False)["input_ids"]
    texts = {}
    for fields, lead in ((1, 0), (1, 3), (None, 0)):
        guided = SamplingConfig(top_k=1, batch_size=4, guidance=3.0, guided_fields=fields, guided_tokens=lead)
        texts[fields, lead] = generate_with(model, tokenizer, prompts, (8, 8), guided, seed=0, empty=empty)
        assert generate_with(fallback, tokenizer, prompts, (8, 8), guided, seed=0, empty=empty) == texts[fields, lead]
    names = {key: [name for name, _ in out] for key, out in texts.items()}
    descs = {key: [desc for _, desc in out] for key, out in texts.items()}
    assert names[1, 0] == names[1, 3] == names[None, 0]
    assert descs[1, 0] != descs[None, 0]
    assert [d[:3] for d in descs[1, 3]] == [d[:3] for d in descs[None, 0]] != [d[:3] for d in descs[1, 0]]
    assert descs[1, 3] != descs[None, 0]
    unguided = generate_with(model, tokenizer, prompts, (8, 8), SamplingConfig(top_k=1, batch_size=4, guidance=0.0), seed=0)
    assert [name for name, _ in unguided] != names[1, 0]


def test_generation_stops_at_end_token(tokenizer, fmt, sample_df):
    """A model whose head always prefers <end> after the first token writes one-token fields."""
    model = tiny_lm(len(tokenizer))
    with torch.no_grad():
        model.transformer.wte.weight.zero_()  # also the head
        model.transformer.wte.weight[tokenizer.convert_tokens_to_ids(END)] = 1.0
        model.transformer.ln_f.bias.fill_(1.0)
        model.transformer.ln_f.weight.zero_()
    prompts = tokenizer(fmt.prompts(sample_df.head(3)), add_special_tokens=False)["input_ids"]
    out = generate_with(model, tokenizer, prompts, (50, 50), SamplingConfig(), seed=0)
    assert all(len(name) == 1 and len(desc) == 1 for name, desc in out)


@pytest.mark.parametrize("width,heads", [(32, 2), (128, 2)], ids=["head-16", "head-64"])
def test_slot_decoder_matches_the_hf_forward(attention, width, heads):
    """Each slot's logits equal Hugging Face GPT-2's forward on that row's sequence: prefill (two rows with the
    same prefix), steps, refill, and steps that run some slots only, in any order (the others keep their
    cache and length).
    Head size 64 is the presets' (the kernel's register path); 16 takes its general loop."""
    from shopgen.text.generate.decoder import SlotDecoder

    torch.manual_seed(5)
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=300, n_positions=64, n_embd=width, n_layer=2, n_head=heads)).eval()
    model = GPT.from_hf(hf)
    assert SlotDecoder.supports(model) and not SlotDecoder.supports(hf)
    torch.manual_seed(1)
    seqs = [torch.randint(0, 300, (n,)).tolist() for n in (5, 2, 7)]
    seqs.append(list(seqs[0]))  # equal prefixes run once; each slot then goes its own way
    dec = SlotDecoder(model, 4, 20)
    assert (dec.native is not None) == (attention == "native")
    # the kernel's int8 cache rounds keys and values: ~2e-3 here at width 128, where logits reach 1.3 (a wrong
    # slot, or a dropped cell, moves them by 0.36 or more)
    tolerance = 1e-2 if dec.native is not None else 1e-4
    dec.prefill(torch.arange(4), seqs)

    def reference(seq):
        with torch.no_grad():
            return hf(input_ids=torch.tensor([seq])).logits[0, -1]

    for step in range(6):
        if step == 2:  # slot 1 takes a new row, as when a row finishes and the next one waits
            seqs[1] = torch.randint(0, 300, (4,)).tolist()
            dec.prefill(torch.tensor([1]), [seqs[1]])
        slots = torch.tensor([2, 0, 3]) if step in (3, 4) else torch.arange(4)  # slot 1 waits two steps
        feed = torch.randint(0, 300, (len(slots),))
        logits = dec.step(feed, slots) if step in (3, 4) else dec.step(feed)
        for row, slot in enumerate(slots.tolist()):
            seqs[slot] = seqs[slot] + [int(feed[row])]
            assert torch.allclose(logits[row], reference(seqs[slot]), atol=tolerance), (step, slot)
        assert dec.lengths.tolist() == [len(seq) for seq in seqs]


@pytest.mark.parametrize("attention", ["native", "torch"], indirect=True)
@pytest.mark.parametrize(("precision", "tolerance"), [("bf16", 0.02), ("int8", 0.05)])
def test_slot_decoder_in_bf16_or_int8_stays_within_rounding_of_the_fp32_forward(attention, precision, tolerance):
    """precision="bf16" multiplies bf16 copies of the weights, "int8" int8 ones with activations quantized
    per call: the logits differ from the fp32 forward's (the matmuls did run in that type) by no more than
    its rounding, through prefill and steps; the ban list stays -inf, and the model's own fp32 weights are
    untouched."""
    from shopgen.text.generate.decoder import SlotDecoder

    hf = tiny_hf(300, seed=7)
    model = GPT.from_hf(hf)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    torch.manual_seed(3)
    seqs = [torch.randint(0, 300, (n,)).tolist() for n in (6, 3, 9)]
    ban = torch.zeros(300)
    ban[[0, 5]] = float("-inf")
    dec = SlotDecoder(model, 3, 20, bias=ban, precision=precision)
    dec.prefill(torch.arange(3), seqs)
    for _ in range(3):
        feed = torch.randint(0, 300, (3,))
        logits = dec.step(feed)
        seqs = [seq + [int(t)] for seq, t in zip(seqs, feed)]
        with torch.no_grad():
            ref = torch.stack([hf(input_ids=torch.tensor([seq])).logits[0, -1] for seq in seqs]) + ban
        kept = ban == 0
        assert logits.dtype == torch.float32 and torch.isneginf(logits[:, ~kept]).all()
        error = float((logits[:, kept] - ref[:, kept]).abs().max())
        # fp32 here: ~1.5e-5; bf16: ~1.3e-3; int8: ~1e-2
        assert 1e-4 < error < tolerance * float(ref[:, kept].abs().max()), error
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())


@pytest.mark.parametrize("attention", ["torch"], indirect=True)
def test_torch_path_over_rows_of_very_different_lengths_matches_the_hf_forward(attention):
    """Slots of very different lengths attend over the longest one's span, each masked to its own cells;
    after some rows finish, `keep` drops their slots and renumbers the rest: the same logits as Hugging
    Face GPT-2's forward on each row's sequence."""
    from shopgen.text.generate.decoder import SlotDecoder

    hf = tiny_hf(300, seed=6)
    model = GPT.from_hf(hf)
    torch.manual_seed(2)
    seqs = [torch.randint(0, 300, (n,)).tolist() for n in (3, 70, 5, 40, 9, 2, 66, 20) * 3]
    dec = SlotDecoder(model, len(seqs), 80)
    assert dec.native is None and dec.runs_idle_slots
    dec.prefill(torch.arange(len(seqs)), seqs)
    for step in range(2):
        if step == 1:  # every third row has finished
            kept = (torch.arange(len(seqs)) % 3 != 0).nonzero().squeeze(1)
            dec.keep(kept)
            seqs = [seqs[i] for i in kept.tolist()]
        feed = torch.randint(0, 300, (len(seqs),))
        logits = dec.step(feed)
        seqs = [seq + [int(t)] for seq, t in zip(seqs, feed)]
        with torch.no_grad():
            for slot, seq in enumerate(seqs):
                ref = hf(input_ids=torch.tensor([seq])).logits[0, -1]
                assert torch.allclose(logits[slot], ref, atol=1e-4), (step, slot)


def test_blocked_top_k_equals_torch_top_k():
    """The sampler's top-k through block maxima picks the same values and tokens as `torch.topk`."""
    from shopgen.text.generate.sampler import top_k_filter

    torch.manual_seed(0)
    logits = torch.randn(64, 5000)  # not a multiple of the block
    logits[:8, 100:] = float("-inf")  # rows with few allowed tokens, as after a ban list
    logits[8:16] *= 20  # peaked rows
    for k in (1, 7, 32):
        values, index = top_k_filter(logits, k)
        ref_values, ref_index = logits.topk(k, dim=-1)
        assert torch.equal(values, ref_values)
        assert torch.equal(logits.gather(-1, index), ref_values)
        assert torch.equal(index.sort(-1).values, ref_index.sort(-1).values)


def test_native_and_torch_draws_sample_the_same_distribution():
    """Both are exact draws from the top-k, top-p distribution: over many draws their frequencies agree.
    The sampler takes the native draw wherever the library built and top-k fits it."""
    from shopgen.text.generate.sampler import Walker, draw_tokens

    lib = native_kernel()
    fields = [FieldSpec(1, 4, False)]
    assert Walker(fields, 2, 0, 3, [0], 300, SamplingConfig(), torch.Generator()).native is lib
    too_wide = SamplingConfig(top_k=lib.draw_max_k + 1)
    assert Walker(fields, 2, 0, 3, [0], 300, too_wide, torch.Generator()).native is None
    torch.manual_seed(1)
    row = torch.randn(1, 300) * 2
    cfg = SamplingConfig(top_k=20, top_p=0.8, temperature=1.3)
    counts = []
    for use in (lib, None):
        gen = torch.Generator().manual_seed(0)
        tokens = torch.cat([draw_tokens(row.expand(4000, -1).clone(), cfg, gen, use) for _ in range(5)])
        counts.append(torch.bincount(tokens, minlength=300).double() / len(tokens))
    assert set(counts[0].nonzero().squeeze(1).tolist()) == set(counts[1].nonzero().squeeze(1).tolist())
    assert 0.5 * float((counts[0] - counts[1]).abs().sum()) < 0.02  # total variation over 20,000 draws each


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_worker_processes_write_each_row_from_its_own_prompt(tokenizer, fmt, sample_df, start, monkeypatch):
    """Greedy text depends only on the row: sharded over 3 workers it must equal one process's, in row order."""
    from shopgen.text.generate import shards

    monkeypatch.setattr(shards, "START_METHOD", start)
    model = tiny_lm(len(tokenizer), seed=3)
    prompts = tokenizer(fmt.prompts(sample_df.head(11)), add_special_tokens=False)["input_ids"]
    greedy = SamplingConfig(top_k=1, batch_size=4, workers=1, precision=ROW_EXACT)
    here = sharded(model, tokenizer, prompts, greedy, seed=0)
    finished, children = [], []
    others = {p.pid for p in multiprocessing.active_children()}  # e.g. joblib's pool, kept alive by an earlier test

    def progress(n: int) -> None:
        finished.append(n)
        children.append(len({p.pid for p in multiprocessing.active_children()} - others))

    spread = sharded(model, tokenizer, prompts, replace(greedy, workers=3), 0, progress)
    assert spread == here
    assert sum(finished) == len(prompts) and len(set(map(tuple, (r[0] for r in here)))) > 1
    assert max(children) == 3, "three worker processes wrote the rows"


def test_worker_processes_are_seeded_and_pass_errors_on(tokenizer, fmt, sample_df):
    model = tiny_lm(len(tokenizer), seed=3)
    prompts = tokenizer(fmt.prompts(sample_df.head(12)), add_special_tokens=False)["input_ids"]
    cfg = SamplingConfig(batch_size=4, workers=2)
    out = sharded(model, tokenizer, prompts, cfg, seed=1)
    assert sharded(model, tokenizer, prompts, cfg, seed=1) == out
    assert sharded(model, tokenizer, prompts, cfg, seed=2) != out
    with pytest.raises(IndexError):  # a token id past the vocabulary fails in its worker, and here
        sharded(model, tokenizer, prompts[:-1] + [[len(tokenizer) + 5]], cfg, seed=1)


class _DiesInAWorker(GPT2LMHeadModel):
    """A model whose forward ends any process but the one that built it, as the OOM killer would."""

    @functools.wraps(GPT2LMHeadModel.forward)  # its signature: the decoder reads the cache argument's name from it
    def forward(self, *args, **kwargs):
        if os.getpid() != self.config.parent_pid:
            os._exit(9)
        return super().forward(*args, **kwargs)


def test_a_worker_that_dies_fails_the_call_with_one_clear_error(tokenizer, fmt, sample_df):
    from shopgen.errors import ShopgenError

    model = _DiesInAWorker(GPT2Config(vocab_size=len(tokenizer), n_positions=128, n_embd=32, n_layer=1, n_head=2,
                                      parent_pid=os.getpid())).eval()
    prompts = tokenizer(fmt.prompts(sample_df.head(6)), add_special_tokens=False)["input_ids"]
    assert sharded(model, tokenizer, prompts, SamplingConfig(workers=1), seed=0)  # here it runs
    with pytest.raises(ShopgenError, match="worker died.*--text-workers 1"):
        sharded(model, tokenizer, prompts, SamplingConfig(workers=2), seed=0)


def test_workers_default_to_one_per_thread_when_each_gets_enough_rows(monkeypatch):
    from shopgen.text.generate.shards import MIN_SHARD_ROWS, plan

    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    assert plan(10 * MIN_SHARD_ROWS, None) == 4
    assert plan(2 * MIN_SHARD_ROWS, None) == 2
    assert plan(MIN_SHARD_ROWS - 1, None) == 1
    assert plan(5, 8) == 5 and plan(100, 3) == 3
