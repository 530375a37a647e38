from __future__ import annotations

import copy
import functools
import multiprocessing
import os
import unicodedata
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from shopgen.presets import PRESETS
from shopgen.text import SAMPLING_PRECISIONS
from shopgen.text.guard import CopyGuard
from shopgen.text.model import TextModel
from shopgen.text.prompt import END, NULL, PAD, PromptFormat, marker
from shopgen.text.sampler import FieldSpec, SamplingConfig, generate_fields
from shopgen.text.tokenizer import control_token_ids, train_tokenizer
from shopgen.text.train import IGNORE

# The tests that a row's greedy text is the same however it is batched sample in fp32: int8 (which "auto"
# picks where it is fastest) quantizes a matmul's input with one scale for all its rows, so a row's rounding
# depends on its batch-mates
ROW_EXACT = "fp32"


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


def _native_kernel():
    """The compiled native kernels; CI machines have a C compiler, so there they must build."""
    from shopgen.text import native

    fn = native.kernel()
    if fn is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the native kernels did not build")
        pytest.skip("no C compiler here: the native kernel cannot be built")
    return fn


@pytest.fixture(params=["native", "torch"])
def attention(request, monkeypatch):
    """Both attention paths of the slot decoder: the compiled kernel (native.py) and the torch ops."""
    from shopgen.text import native

    if request.param == "torch":
        monkeypatch.setenv("SHOPGEN_NATIVE", "0")
    native.kernel.cache_clear()
    if request.param == "native":
        _native_kernel()
    yield request.param
    native.kernel.cache_clear()


def _tiny_lm(vocab: int, seed: int = 0, **config) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=vocab, n_positions=128, n_embd=32, n_layer=1, n_head=2, **config)
    return GPT2LMHeadModel(cfg).eval()


def _generate(model, tokenizer, prompts, caps, cfg, seed, empty=None):
    tid = tokenizer.convert_tokens_to_ids
    empty = [tid(NULL)] if empty is None else empty  # the default sampling guides against an empty prompt
    fields = [FieldSpec(tid(marker("name")), caps[0], False), FieldSpec(tid(marker("description")), caps[1], True)]
    return generate_fields(
        model, prompts, fields, end_id=tid(END), pad_id=tid(PAD), null_id=tid(NULL), banned_ids=[tid(PAD)],
        cfg=cfg, generator=torch.Generator().manual_seed(seed), empty_prompt=empty,
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


@pytest.mark.parametrize("guidance,guided_fields,guided_tokens", [(0.0, 1, 0), (1.5, 1, 0), (1.5, 1, 3), (1.5, None, 0)],
                         ids=["unguided", "guided-name", "guided-name-and-lead", "guided-all"])
@pytest.mark.parametrize("slots", [True, False], ids=["continuous-slots", "hf-cache-fallback"])
def test_batched_kv_cache_generation_equals_one_row_at_a_time(tokenizer, fmt, sample_df, slots, guidance, guided_fields,
                                                              guided_tokens, attention):
    """Padding, refilled slots, positions, the cache and shadows dropped after the name must not change
    what a row generates (greedy)."""
    from shopgen.text.decoder import SlotDecoder

    model = _tiny_lm(len(tokenizer), seed=3, scale_attn_by_inverse_layer_idx=not slots)
    assert SlotDecoder.supports(model) == slots
    prompts = tokenizer(fmt.prompts(sample_df.head(6)), add_special_tokens=False)["input_ids"]
    empty = tokenizer(fmt.empty_prompt(), add_special_tokens=False)["input_ids"]
    assert len({len(p) for p in prompts}) > 1, "prompts of different lengths exercise the padding"
    greedy = SamplingConfig(top_k=1, batch_size=4, guidance=guidance, guided_fields=guided_fields,
                            guided_tokens=guided_tokens, precision=ROW_EXACT)  # 6 rows, 4 slots
    batched = _generate(model, tokenizer, prompts, (8, 8), greedy, seed=0, empty=empty)
    single = [_generate(model, tokenizer, [p], (8, 8), greedy, seed=0, empty=empty)[0] for p in prompts]
    assert batched == single


class _NotPlainGPT2(GPT2LMHeadModel):
    """The same weights, but not the exact class the slot decoder takes: forces the HF-cache path."""


def test_guidance_is_the_same_on_both_decoders_and_changes_the_text(tokenizer, fmt, sample_df):
    """The slot decoder's shadow slots and the HF path's shadow rows give the same guided greedy text.
    Guiding the first field writes the same names as guiding every field; guiding the description's
    first 3 tokens too writes those 3 as guiding every field does, and then goes its own way; without
    them each description follows its name unguided from the start."""
    from shopgen.text.decoder import SlotDecoder

    model = _tiny_lm(len(tokenizer), seed=5)
    fallback = _NotPlainGPT2(model.config).eval()
    fallback.load_state_dict(model.state_dict())
    assert SlotDecoder.supports(model) and not SlotDecoder.supports(fallback)
    prompts = tokenizer(fmt.prompts(sample_df.head(6)), add_special_tokens=False)["input_ids"]
    empty = tokenizer(fmt.empty_prompt(), add_special_tokens=False)["input_ids"]
    texts = {}
    for fields, lead in ((1, 0), (1, 3), (None, 0)):
        guided = SamplingConfig(top_k=1, batch_size=4, guidance=3.0, guided_fields=fields, guided_tokens=lead)
        texts[fields, lead] = _generate(model, tokenizer, prompts, (8, 8), guided, seed=0, empty=empty)
        assert _generate(fallback, tokenizer, prompts, (8, 8), guided, seed=0, empty=empty) == texts[fields, lead]
    names = {key: [name for name, _ in out] for key, out in texts.items()}
    descs = {key: [desc for _, desc in out] for key, out in texts.items()}
    assert names[1, 0] == names[1, 3] == names[None, 0]
    assert descs[1, 0] != descs[None, 0]
    assert [d[:3] for d in descs[1, 3]] == [d[:3] for d in descs[None, 0]] != [d[:3] for d in descs[1, 0]]
    assert descs[1, 3] != descs[None, 0]
    unguided = _generate(model, tokenizer, prompts, (8, 8), SamplingConfig(top_k=1, batch_size=4, guidance=0.0), seed=0)
    assert [name for name, _ in unguided] != names[1, 0]


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
    (seq, labels, weights), _ = m._sequences(prompt_ids, texts, ids)
    assert labels[: len(prompt_ids[0]) + 1] == [IGNORE] * (len(prompt_ids[0]) + 1)
    labelled = [t for t in labels if t != IGNORE]
    assert labelled == ids["name"][0] + [m._id(END)] + ids["description"][0] + [m._id(END)]
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
        empty = m._encode([m.format_.empty_prompt()]) * len(rows)
        seqs = m._sequences(empty, texts, {c: m._encode(texts[c]) for c in texts})
        return evaluate(m.model_, seqs, 16, m._id(PAD))

    taught, plain = fit(0.5), fit(0.0)
    assert plain.sampling.guidance == 0 and taught.sampling.guidance > 0
    assert empty_prompt_loss(taught) < empty_prompt_loss(plain) - 0.1  # measured: 1.87 vs 2.09
    guided = SamplingConfig(guidance=1.5)
    taught.generate(sample_df.head(3), seed=0, show_progress=False, sampling=guided)
    with pytest.raises(ShopgenError, match="without unconditional rows"):
        plain.generate(sample_df.head(3), seed=0, show_progress=False, sampling=guided)


def test_training_follows_the_label_weights():
    """A part of the text whose weight is 0 is not learned; the same part at weight 1 is."""
    from shopgen.text.train import batch_loss, collate, train_lm

    torch.manual_seed(0)
    def seqs_of(w: float) -> list:  # the last two tokens follow from the second: learnable when weighted
        return [([1, 2 + k % 5, 10 + k % 5, 20 + k % 5], [IGNORE, 2 + k % 5, 10 + k % 5, 20 + k % 5], [0.0, 1.0, w, w])
                for k in range(200)]

    def tail_loss(w: float) -> float:
        model = GPT2LMHeadModel(GPT2Config(vocab_size=32, n_positions=8, n_embd=32, n_layer=1, n_head=2))
        train_lm(model, seqs_of(w), pad_id=0, batch_size=16, learning_rate=3e-3, max_epochs=4, max_seconds=60,
                 seed=0, show_progress=False)
        ids, mask, labels, _ = collate(seqs_of(1.0), np.arange(20), 0)
        labels[:, 1] = IGNORE  # score the weighted part only
        with torch.no_grad():
            return float(batch_loss(model.eval(), ids, mask, labels))

    assert tail_loss(0.0) > tail_loss(1.0) + 1.0


@pytest.mark.parametrize("weighted", [False, True])
def test_fused_head_loss_equals_the_projection_then_cross_entropy(weighted, monkeypatch):
    """Loss and both gradients as F.cross_entropy over the full logits gives them, across block boundaries;
    under bf16 autocast as the autocast head and loss give them, to bf16's rounding."""
    import torch.nn.functional as F

    from shopgen.text import loss

    monkeypatch.setattr(loss, "BLOCK_ROWS", 7)  # 50 rows: seven blocks, the last short
    gen = torch.Generator().manual_seed(0)
    hidden, weight = torch.randn(50, 16, generator=gen), torch.randn(300, 16, generator=gen)
    targets = torch.randint(0, 300, (50,), generator=gen)
    weights = torch.rand(50, generator=gen) + 0.1 if weighted else None

    def run(fused: bool, bf16: bool) -> list[torch.Tensor]:
        h, w = hidden.clone().requires_grad_(), weight.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            if fused:
                value = loss.head_cross_entropy(h, w, targets, weights)
            else:
                each = F.cross_entropy(F.linear(h, w).float(), targets, reduction="none")
                value = each.mean() if weights is None else (each * weights).sum() / weights.sum()
        (3 * value).backward()
        return [value.detach(), h.grad, w.grad]

    for bf16, tol in ((False, 1e-5), (True, 2e-2)):
        for got, want in zip(run(True, bf16), run(False, bf16)):
            assert got.dtype == torch.float32
            torch.testing.assert_close(got, want, rtol=tol, atol=tol * float(want.abs().max()))


def test_bf16_training_runs_under_autocast_and_learns_as_fp32_does():
    """bf16 changes the arithmetic (so the weights differ from fp32's) but not what is learned; the weights
    the optimizer keeps stay fp32."""
    from shopgen.text.train import batch_loss, collate, train_lm

    seqs = [([1, 2 + k % 5, 10 + k % 5, 20 + k % 5], [IGNORE, 2 + k % 5, 10 + k % 5, 20 + k % 5], [0.0, 1.0, 1.0, 1.0])
            for k in range(180)]

    def trained(precision: str) -> tuple[GPT2LMHeadModel, float]:
        torch.manual_seed(0)
        model = GPT2LMHeadModel(GPT2Config(vocab_size=32, n_positions=8, n_embd=32, n_layer=1, n_head=2))
        stats = train_lm(model, seqs, pad_id=0, batch_size=16, learning_rate=3e-3, max_epochs=20, max_seconds=60,
                         seed=0, show_progress=False, precision=precision)
        assert stats.precision == precision
        ids, mask, labels, _ = collate(seqs, np.arange(20), 0)
        labels[:, 1] = IGNORE  # the two tokens that follow from the prompt
        with torch.no_grad():
            return model, float(batch_loss(model.eval(), ids, mask, labels))

    fp32, fp32_loss = trained("fp32")
    bf16, bf16_loss = trained("bf16")
    assert all(p.dtype == torch.float32 for p in bf16.parameters())
    assert not torch.equal(fp32.lm_head.weight, bf16.lm_head.weight)
    assert bf16_loss < 0.1 and abs(bf16_loss - fp32_loss) < 0.05


def test_auto_precision_is_narrower_only_where_it_measured_faster(monkeypatch):
    from shopgen.errors import ShopgenError
    from shopgen.text import precision

    speed = precision.speedups()
    assert set(speed) == set(precision.SPEEDUPS) and speed["train_bf16"] > 0 and speed["sample_int8"] > 0
    monkeypatch.delenv("SHOPGEN_PRECISION", raising=False)
    assert precision.resolve("auto") == ("bf16" if speed["train_bf16"] >= precision.MIN_SPEEDUP else "fp32")
    fastest = max(("bf16", "int8"), key=lambda p: speed[f"sample_{p}"])
    expected = fastest if speed[f"sample_{fastest}"] >= precision.MIN_SPEEDUP else "fp32"
    assert precision.resolve("auto", SAMPLING_PRECISIONS) == expected
    assert precision.resolve("fp32") == "fp32" and precision.resolve("bf16") == "bf16"
    monkeypatch.setenv("SHOPGEN_PRECISION", "fp32")
    assert precision.resolve("auto") == "fp32"
    assert precision.resolve("bf16") == "bf16"  # an explicit choice beats the environment's default
    with pytest.raises(ShopgenError, match="precision 'fp16' is unknown"):
        precision.resolve("fp16")
    monkeypatch.setenv("SHOPGEN_PRECISION", "fp8")
    with pytest.raises(ShopgenError, match="SHOPGEN_PRECISION 'fp8' is unknown"):
        precision.resolve("auto")
    monkeypatch.setenv("SHOPGEN_PRECISION", "int8")  # the sampler's int8 matmuls; training has none
    assert precision.resolve("auto", SAMPLING_PRECISIONS) == "int8"
    with pytest.raises(ShopgenError, match="SHOPGEN_PRECISION 'int8' is unknown; use one of auto, fp32, bf16$"):
        precision.resolve("auto")


def test_auto_precision_is_timed_once_a_machine_and_kept(monkeypatch, tmp_path):
    """Every process reads the kept timings, so "auto" cannot pick another type under another load."""
    import json

    from shopgen.text import precision

    monkeypatch.setenv("SHOPGEN_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("SHOPGEN_PRECISION", raising=False)
    precision.speedups.cache_clear()
    try:
        measured = precision.speedups()
        (kept,) = tmp_path.glob("precision-*.json")
        assert {k: v for k, v in json.loads(kept.read_text()).items() if k in precision.SPEEDUPS} == measured
        cases = [  # what a later process reads -> what training's and the sampler's "auto" pick
            ({"train_bf16": 9.0, "sample_bf16": 3.0, "sample_int8": 2.0}, "bf16", "bf16"),
            ({"train_bf16": 0.1, "sample_bf16": 0.1, "sample_int8": 1.8}, "fp32", "int8"),
            ({"train_bf16": 2.0, "sample_bf16": 1.2, "sample_int8": 0.0}, "bf16", "fp32"),  # int8 gone from torch
        ]
        for speed, training, sampling in cases:
            kept.write_text(json.dumps(speed))
            precision.speedups.cache_clear()
            assert precision.resolve("auto") == training
            assert precision.resolve("auto", SAMPLING_PRECISIONS) == sampling
        kept.write_text("{not json")  # a broken file is timed again and replaced
        precision.speedups.cache_clear()
        assert precision.speedups()["train_bf16"] > 0 and json.loads(kept.read_text())["train_bf16"] > 0
    finally:
        precision.speedups.cache_clear()


def test_processes_starting_together_time_precision_once(tmp_path):
    """Two processes on an empty machine cache: the second waits for the first's timings and reads them (two
    timings would differ in their last digits)."""
    import json
    import subprocess
    import sys

    code = "import json; from shopgen.text import precision; print(json.dumps(precision.speedups()))"
    env = {**os.environ, "SHOPGEN_CACHE_DIR": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    first, second = (json.loads(p.communicate(timeout=300)[0]) for p in procs)
    assert first == second and len(list(tmp_path.glob("precision-*.json"))) == 1


def test_instruction_caps_are_timed_apart_and_pick_as_that_cpu_would(tmp_path):
    """With torch's kernels capped at AVX2 (how an AVX-512 host stands in for an AVX2 one), bf16 is emulated
    and "auto" must not pick it; those timings go to their own file, beside the uncapped machine's."""
    import json
    import subprocess
    import sys

    code = ("import json; from shopgen.text import SAMPLING_PRECISIONS, precision; "
            "print(json.dumps([precision.resolve('auto'), precision.resolve('auto', SAMPLING_PRECISIONS)]))")
    caps = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "FBGEMM_ENABLE_INSTRUCTIONS": "AVX2"}
    env = {k: v for k, v in os.environ.items() if k not in (*caps, "SHOPGEN_PRECISION")}
    env["SHOPGEN_CACHE_DIR"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-c", code], env={**env, **caps}, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    training, sampling = json.loads(out.stdout)
    assert training == "fp32" and sampling in ("fp32", "int8")
    subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300, check=True)
    capped, uncapped = sorted(tmp_path.glob("precision-*.json"), key=lambda p: json.loads(p.read_text())["train_bf16"])
    assert json.loads(capped.read_text())["sample_bf16"] < 0.5  # emulated bf16: ~0.01x fp32 on a Zen 4


def test_lead_passes_teach_the_first_field_in_fewer_epochs():
    """Rows cut after their first field, repeated each epoch, teach that field more than the full rows alone."""
    from shopgen.text.train import batch_loss, collate, train_lm, with_leads

    rng = np.random.default_rng(0)
    seqs = []
    for k in range(180):  # under 200 rows: no validation split
        # prompt 2+a, the lead field 10+a and its end token 3, then 12 tokens of noise
        ids = [1, 2 + k % 5, 10 + k % 5, 3, *rng.integers(16, 32, 12).tolist()]
        seqs.append((ids, [IGNORE, IGNORE, *ids[2:]], [0.0, 0.0] + [1.0] * 14))
    cut = with_leads(seqs[:1], [12], [2])
    assert cut[1] == cut[2] == ([1, 2, 10, 3], [IGNORE, IGNORE, 10, 3], [0.0, 0.0, 1.0, 1.0])
    assert with_leads(seqs[:2], [12, 12], [0, 2])[2:] == [with_leads(seqs[1:2], [12], [1])[1]] * 2

    def lead_loss(repeats: int) -> float:
        torch.manual_seed(0)
        model = GPT2LMHeadModel(GPT2Config(vocab_size=32, n_positions=16, n_embd=32, n_layer=1, n_head=2))
        stats = train_lm(model, seqs, pad_id=0, batch_size=16, learning_rate=3e-3, max_epochs=1, max_seconds=60,
                         seed=0, show_progress=False, lead_tails=[12] * len(seqs), lead_repeats=repeats)
        assert stats.steps == -(-len(seqs) * (1 + repeats) // 16)
        ids, mask, labels, _ = collate(seqs, np.arange(40), 0)
        labels[:, 4:] = IGNORE  # score the lead field only
        with torch.no_grad():
            return float(batch_loss(model.eval(), ids, mask, labels))

    assert lead_loss(3) < lead_loss(0) - 0.3


def test_lead_passes_can_carry_the_next_fields_first_tokens():
    """A lead ends after the first field's end token, or `next_tokens` into the next field (its marker
    besides), or at that field's end token when it comes sooner."""
    from shopgen.text.model import lead_length

    end = 3
    ids = [1, 2, 20, 10, 11, end, 21, 12, 13, 14, 15, end]  # prompt, marker, name, end, marker, description, end
    assert lead_length(ids, end) == lead_length(ids, end, 0) == 6
    assert ids[:lead_length(ids, end, 2)] == [1, 2, 20, 10, 11, end, 21, 12, 13]
    assert lead_length(ids, end, 10) == len(ids)
    assert lead_length(ids[:-1], end, 10) == len(ids) - 1  # a cut row without its last end token


def test_fit_cuts_each_lead_its_presets_next_tokens_into_the_description(sample_schema, sample_df):
    """With `lead_next_tokens`, every lead pass TextModel.fit trains is that many description tokens (and
    the description's marker) longer: one epoch of the same rows trains exactly that many more tokens."""

    from shopgen.text.model import rare_lead_repeats

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

    from shopgen.text.model import rare_lead_repeats

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

    from shopgen.text.model import rare_lead_repeats

    df = sample_df.head(150).assign(category=["Books"] * 140 + ["Garden"] * 10)  # under 200 rows: no validation split
    preset = replace(PRESETS["fast"].text, lead_repeats=2, rare_lead_boost=3.0, batch_size=16)
    repeats = rare_lead_repeats(sample_schema, df, sample_schema.conditions, preset)
    assert sum(repeats) > 2 * len(df)
    model = TextModel(preset, max_epochs=1, max_seconds=120).fit(sample_schema, df, show_progress=False)
    assert model.stats_.steps == math.ceil((len(df) + sum(repeats)) / 16)


def test_loss_on_labelled_positions_only_equals_the_full_hf_loss():
    """Training projects only the labelled positions onto the vocabulary; the loss must not change."""
    from shopgen.text.train import batch_loss

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=300, n_positions=64, n_embd=32, n_layer=2, n_head=2)).eval()
    ids = torch.randint(0, 300, (3, 20))
    mask = torch.ones_like(ids)
    mask[1, 15:] = 0  # padding
    labels = ids.clone()
    labels[:, :6] = IGNORE  # the prompt
    labels[mask == 0] = IGNORE
    full = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    assert torch.allclose(batch_loss(model, ids, mask, labels), full, rtol=1e-6, atol=1e-6)
    assert torch.allclose(batch_loss(model, ids, mask, labels, torch.full(ids.shape, 3.0)), full, rtol=1e-6, atol=1e-6)
    heavy = torch.ones(ids.shape)
    heavy[:, 10:] = 5.0  # later tokens weigh more: another mean
    assert not torch.allclose(batch_loss(model, ids, mask, labels, heavy), full, rtol=1e-3)


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
    assert again.stats_.budget_s == 5 and again.stats_.steps == m.stats_.steps
    assert again.generate(sample_df.head(8), seed=0, show_progress=False)[0].equals(out)
    assert isinstance(copied, pd.Series)


@pytest.mark.parametrize("width,heads", [(32, 2), (128, 2)], ids=["head-16", "head-64"])
def test_slot_decoder_matches_the_hf_forward(attention, width, heads):
    """Each slot's logits equal the model's own forward on that row's sequence: prefill (two rows with the
    same prefix), steps, refill, and steps that run some slots only, in any order (the others keep their
    cache and length).
    Head size 64 is the presets' (the kernel's register path); 16 takes its general loop."""
    from shopgen.text.decoder import SlotDecoder

    torch.manual_seed(5)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=300, n_positions=64, n_embd=width, n_layer=2, n_head=heads)).eval()
    assert SlotDecoder.supports(model)
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
            return model(input_ids=torch.tensor([seq])).logits[0, -1]

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
    from shopgen.text.decoder import SlotDecoder

    model = _tiny_lm(300, seed=7)
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
            ref = torch.stack([model(input_ids=torch.tensor([seq])).logits[0, -1] for seq in seqs]) + ban
        kept = ban == 0
        assert logits.dtype == torch.float32 and torch.isneginf(logits[:, ~kept]).all()
        error = float((logits[:, kept] - ref[:, kept]).abs().max())
        # fp32 here: ~1.5e-5; bf16: ~1.3e-3; int8: ~1e-2
        assert 1e-4 < error < tolerance * float(ref[:, kept].abs().max()), error
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())


def test_bf16_training_swaps_sdpa_for_the_plain_attention_and_back():
    """Under bf16 the training runs the plain matmul-softmax attention (faster there than SDPA's backward),
    in fp32 it keeps SDPA; either way the model leaves with the attention it came with, also on an error."""
    from shopgen.text.train import kernels_for

    model = _tiny_lm(50)
    assert model.config._attn_implementation == "sdpa"
    with kernels_for(model, "bf16"):
        assert model.config._attn_implementation == "eager"
    with kernels_for(model, "fp32"):
        assert model.config._attn_implementation == "sdpa"
    with pytest.raises(RuntimeError), kernels_for(model, "bf16"):
        raise RuntimeError("a step failed")
    assert model.config._attn_implementation == "sdpa"


@pytest.mark.parametrize(("precision", "during"), [("bf16", "eager"), ("fp32", "sdpa")])
def test_training_runs_the_attention_its_precision_is_fastest_with(precision, during):
    """What train_lm's forward passes see: the plain attention under bf16, SDPA in fp32; SDPA afterwards."""
    from shopgen.text.train import train_lm

    model = _tiny_lm(40)
    seen = set()
    model.transformer.register_forward_pre_hook(lambda module, args: seen.add(module.config._attn_implementation))
    seqs = [([1, 2 + k % 5, *range(10, 20)], [IGNORE, IGNORE, *range(10, 20)], [0.0, 0.0] + [1.0] * 10) for k in range(40)]
    train_lm(model, seqs, pad_id=0, batch_size=8, learning_rate=1e-3, max_epochs=1, max_seconds=60, seed=0,
             show_progress=False, precision=precision)
    assert seen == {during} and model.config._attn_implementation == "sdpa"


def test_bf16_rows_are_padded_to_few_counts_at_a_small_cost():
    """oneDNN compiles a kernel per bf16 matmul shape: every row count up to 4,096 maps to one of 41, never
    below itself, never more than 31 rows or 1/8 above it."""
    from shopgen.text.decoder import padded_rows

    padded = {rows: padded_rows(rows) for rows in range(1, 4097)}
    assert len(set(padded.values())) == 41
    assert all(rows <= p and (p - rows <= 31 or p <= 1.125 * rows) for rows, p in padded.items())


def test_copy_guard_lets_stock_phrases_through_only_when_asked():
    """A description that 1 % of the rows carry ("India") is the catalog's stock phrase, not a record."""
    texts = ["India"] * 6 + [f"product number {i}" for i in range(94)]
    assert CopyGuard.from_texts(texts).copies(["india", "product number 3"]) == [True, True]
    guard = CopyGuard.from_texts(texts, boilerplate_share=0.01)
    assert guard.copies(["india", "product number 3"]) == [False, True]
    assert CopyGuard.from_texts(texts[:4] + texts[6:], boilerplate_share=0.01).copies(["india"]) == [True]


@pytest.mark.parametrize("attention", ["torch"], indirect=True)  # the torch path, where slot order matters
def test_slot_decoder_grouped_attention_matches_the_hf_forward(attention):
    """Slots of very different lengths attend in groups of neighbours, each over its own span, in any
    order; after some rows finish, `compact` closes the rest up in place: the same logits as the model's
    forward on each row's sequence."""
    from shopgen.text.decoder import SlotDecoder, slot_groups

    model = _tiny_lm(300, seed=6)
    torch.manual_seed(2)
    seqs = [torch.randint(0, 300, (n,)).tolist() for n in (3, 70, 5, 40, 9, 2, 66, 20) * 3]
    dec = SlotDecoder(model, len(seqs), 80)
    assert dec.native is None
    dec.prefill(torch.arange(len(seqs)), seqs)
    assert len(slot_groups(dec.lengths)) > 1
    for step in range(2):
        if step == 1:  # every third row has finished
            active = torch.arange(len(seqs)) % 3 != 0
            perm = dec.compact(active)
            seqs = [seqs[i] for i in perm.tolist()]
            assert dec.lengths[int(active.sum()):].eq(0).all()
        feed = torch.randint(0, 300, (len(seqs),))
        logits = dec.step(feed)
        seqs = [seq + [int(t)] for seq, t in zip(seqs, feed)]
        with torch.no_grad():
            for slot, seq in enumerate(seqs[: int(active.sum())] if step else seqs):
                ref = model(input_ids=torch.tensor([seq])).logits[0, -1]
                assert torch.allclose(logits[slot], ref, atol=1e-4), (step, slot)


def _int8_cache(slots: int, heads: int, span: int, dim: int) -> tuple[torch.Tensor, ...]:
    """Zeroed int8 keys and values and their float scales, as the decoder gives the kernel."""
    return (torch.zeros(slots, heads, span, dim, dtype=torch.int8), torch.zeros(slots, heads, span, dim, dtype=torch.int8),
            torch.zeros(slots, heads, span), torch.zeros(slots, heads, span))


def test_native_kernel_refuses_a_full_cache_and_writes_no_cell_past_it():
    """A slot with no cell left raises instead of writing past the cache (the C loop has no bounds of its own);
    the other slots are written as usual. A row's slot index past the cache is refused before the kernel runs."""
    from shopgen.text import native

    fn = _native_kernel()
    k, v, ks, vs = _int8_cache(2, 2, 4, 8)
    qkv = torch.ones(2, 3 * 16)
    native.decode_attention(fn, qkv, k, v, ks, vs, torch.tensor([3, 0]), 1.0)
    assert k[0, :, 3].eq(127).all() and k[1, :, 0].eq(127).all() and ks[0, :, 3].eq(1 / 127).all()
    k.zero_()
    with pytest.raises(IndexError, match="cache is full"):
        native.decode_attention(fn, qkv, k, v, ks, vs, torch.tensor([4, 1]), 1.0)
    assert k[0].eq(0).all() and k[1, :, 1].eq(127).all()
    with pytest.raises(ValueError, match="slots inside the cache"):  # a slot index past the cache
        native.decode_attention(fn, qkv, k, v, ks, vs, torch.tensor([0, 0]), 1.0, torch.tensor([1, 2]))


def test_native_kernel_keeps_an_int8_cache_and_its_portable_build_agrees(tmp_path):
    """The cache holds each key and value vector as int8 with a scale (absmax / 127), rounded as
    `native.quantize` rounds the prefill's, and attention over it is the float attention of the values the
    cells stand for. The build without -march=native (no AVX2: the plain C loops) writes the same bytes and
    gives the same output."""
    from shopgen.text import native

    fast = _native_kernel()
    compiler = os.environ.get("CC") or "cc"
    assert native.build(compiler, native.FLAG_SETS[1], tmp_path / "portable.so")
    portable = native.load(tmp_path / "portable.so")
    torch.manual_seed(0)
    slots, heads, span, dim = 3, 2, 6, 64
    qkv = torch.randn(slots, 3 * heads * dim) * 3
    qkv[1, heads * dim: heads * dim + dim] = 0.0  # a zero key vector: scale 0, no division by it
    qkv[1, 2 * heads * dim: 2 * heads * dim + 4] = torch.tensor([1e-6, -3e-7, 7e4, 1 / 3])  # one huge entry
    pos = torch.tensor([5, 0, 2])
    history = native.quantize(torch.randn(slots, heads, span, dim))
    outs, caches = [], []
    for lib in (fast, portable):
        k, v = history[0].clone(), history[0].flip(-1).contiguous()
        ks, vs = history[1].clone(), history[1].flip(-1).contiguous()
        outs.append(native.decode_attention(lib, qkv, k, v, ks, vs, pos, dim**-0.5))
        caches.append((k, v, ks, vs))
    for a, b in zip(*caches):
        assert torch.equal(a, b)
    k, v, ks, vs = caches[0]
    rows = torch.arange(slots)
    new_k, new_ks = native.quantize(qkv[:, heads * dim: 2 * heads * dim].view(slots, heads, dim))
    assert torch.equal(k[rows, :, pos], new_k) and torch.equal(ks[rows, :, pos], new_ks)
    assert ks[1, 0, 0] == 0 and k[1, 0, 0].eq(0).all()
    assert v[1, 0, 0, :4].tolist() == [0, 0, 127, 0] and vs[1, 0, 0] == 7e4 / 127
    for b in range(slots):
        n = int(pos[b]) + 1
        q = qkv[b, : heads * dim].view(heads, 1, dim)
        keys, values = k[b, :, :n] * ks[b, :, :n, None], v[b, :, :n] * vs[b, :, :n, None]
        ref = torch.softmax(q @ keys.transpose(-1, -2) * dim**-0.5, -1) @ values
        assert torch.allclose(outs[0][b], ref.reshape(-1), rtol=1e-4, atol=1e-4)
    assert torch.allclose(outs[0], outs[1], rtol=1e-4, atol=1e-4)


def test_native_gelu_is_torchs_tanh_gelu():
    from shopgen.text import native

    fn = _native_kernel()
    torch.manual_seed(0)
    x = torch.cat([torch.randn(5000) * 3, torch.tensor([0.0, -0.0, 1e-30, -1e-30, -12.0, 12.0, -95.0, 95.0, 3e4])])
    out = native.gelu_tanh_(fn, x.clone())
    # torch's float kernel rounds 1 + tanh(u) to 0 below x ~ -5 (true values ~1e-7): hence the atol
    assert torch.allclose(out, torch.nn.functional.gelu(x, approximate="tanh"), rtol=2e-6, atol=3e-7)
    d = x.double()  # 0.5 x (1 + tanh u) = x sigmoid(2u), tiny values included, to the rounding of u in float
    exact = d * torch.sigmoid(2 * (2 / torch.pi) ** 0.5 * (d + 0.044715 * d**3))
    assert torch.allclose(out.double(), exact, rtol=1e-5, atol=1e-30)  # u rounded to float: ~60 x 1e-7


def test_native_training_gelu_has_torchs_values_and_gradients():
    """gelu.c's training pass against torch's tanh GELU and autograd, on values from -95 to 3e4, across the
    threads' split of a long tensor and a short one (one thread), and through torch's fallback for bf16."""
    from shopgen.text import native

    act = native.GeluTanh(_native_kernel())
    torch.manual_seed(0)
    for x in (torch.cat([torch.randn(200_000) * 3, torch.tensor([0.0, -12.0, 12.0, -95.0, 95.0, 3e4])]),
              torch.randn(37, 11)):
        ours, ref = x.clone().requires_grad_(), x.clone().requires_grad_()
        y, y_ref = act(ours), torch.nn.functional.gelu(ref, approximate="tanh")
        torch.testing.assert_close(y, y_ref, rtol=2e-6, atol=3e-7)
        grad = torch.randn_like(x)
        y.backward(grad)
        y_ref.backward(grad)
        torch.testing.assert_close(ours.grad, ref.grad, rtol=1e-5, atol=1e-5)  # each ~4e-6 from the exact
        d = x.double().requires_grad_()
        (d * torch.sigmoid(2 * (2 / torch.pi) ** 0.5 * (d + 0.044715 * d**3))).backward(grad.double())
        torch.testing.assert_close(ours.grad.double(), d.grad, rtol=1e-5, atol=1e-7)
    half = torch.randn(64).bfloat16()
    assert torch.equal(act(half), torch.nn.functional.gelu(half, approximate="tanh"))


def test_fp32_training_runs_the_native_gelu_and_leaves_the_models_own():
    """train_lm's forward passes see gelu.c's activation in fp32 (torch's under bf16), and the model leaves
    with its own activation, so a saved model holds no native handle."""
    from shopgen.text import native
    from shopgen.text.train import kernels_for

    _native_kernel()
    model = _tiny_lm(50)
    own = [block.mlp.act for block in model.transformer.h]
    with kernels_for(model, "fp32"):
        assert all(isinstance(block.mlp.act, native.GeluTanh) for block in model.transformer.h)
    with kernels_for(model, "bf16"):
        assert not any(isinstance(block.mlp.act, native.GeluTanh) for block in model.transformer.h)
    with pytest.raises(RuntimeError), kernels_for(model, "fp32"):
        raise RuntimeError("a step failed")
    assert [block.mlp.act for block in model.transformer.h] == own


def test_native_kernel_builds_into_an_empty_cache(tmp_path, monkeypatch):
    """On a machine with a C compiler (every CI machine) the kernel builds from source, once, into the cache."""
    from shopgen.text import native

    monkeypatch.setenv("SHOPGEN_CACHE_DIR", str(tmp_path))
    native.kernel.cache_clear()
    try:
        _native_kernel()
        built = list(tmp_path.rglob("*.so"))
        assert len(built) == 1 and built[0].parent == native.cache_dir()
    finally:
        native.kernel.cache_clear()


def test_without_a_working_compiler_the_decoder_keeps_its_torch_path(tmp_path, monkeypatch):
    """A compiler that fails leaves no file behind and no kernel: the slot decoder attends through torch."""
    from shopgen.text import native
    from shopgen.text.decoder import SlotDecoder

    monkeypatch.setenv("CC", "false")
    monkeypatch.setenv("SHOPGEN_CACHE_DIR", str(tmp_path))
    native.kernel.cache_clear()
    try:
        assert native.kernel() is None
        assert SlotDecoder(_tiny_lm(50), 2, 8).native is None
        assert not list(tmp_path.rglob("*.so"))
    finally:
        native.kernel.cache_clear()


def test_blocked_top_k_equals_torch_top_k():
    """The sampler's top-k through block maxima picks the same values and tokens as `torch.topk`."""
    from shopgen.text.sampler import top_k_filter

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


def test_native_draw_takes_the_token_at_its_uniform_of_the_kept_top_k_top_p_mass():
    from shopgen.text import native

    lib = _native_kernel()
    torch.manual_seed(0)
    logits = torch.randn(64, 5000) * 3
    logits[:8, 3:] = float("-inf")  # rows with fewer allowed tokens than k, as after a ban list
    uniforms = torch.rand(64, dtype=torch.float64)
    k, top_p, temperature = 40, 0.9, 0.7
    drawn = native.draw(lib, logits, uniforms, k, top_p, temperature)

    values, index = logits.double().topk(k, dim=-1)
    mass = ((values - values[:, :1]) / temperature).exp()
    kept = mass * ((mass.cumsum(-1) - mass) <= top_p * mass.sum(-1, keepdim=True))
    cumulative = kept.cumsum(-1)
    pick = (cumulative > uniforms[:, None] * cumulative[:, -1:]).double().argmax(-1, keepdim=True)
    assert torch.equal(drawn, index.gather(-1, pick).squeeze(-1))
    assert bool((drawn[:8] < 3).all())


def test_native_and_torch_draws_sample_the_same_distribution():
    """Both are exact draws from the top-k, top-p distribution: over many draws their frequencies agree.
    The sampler takes the native draw wherever the library built and top-k fits it."""
    from shopgen.text.sampler import Walker, draw_tokens

    lib = _native_kernel()
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


def _sharded(model, tokenizer, prompts, cfg, seed, on_batch=None):
    from shopgen.text.shards import generate_sharded

    tid = tokenizer.convert_tokens_to_ids
    fields = [FieldSpec(tid(marker("name")), 8, False), FieldSpec(tid(marker("description")), 12, True)]
    return generate_sharded(
        model, prompts, fields, end_id=tid(END), pad_id=tid(PAD), null_id=tid(NULL), banned_ids=[tid(PAD)],
        cfg=cfg, generator=torch.Generator().manual_seed(seed), empty_prompt=[tid(NULL)], on_batch=on_batch,
    )


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_worker_processes_write_each_row_from_its_own_prompt(tokenizer, fmt, sample_df, start, monkeypatch):
    """Greedy text depends only on the row: sharded over 3 workers it must equal one process's, in row order."""
    from shopgen.text import shards

    monkeypatch.setattr(shards, "START_METHOD", start)
    model = _tiny_lm(len(tokenizer), seed=3)
    prompts = tokenizer(fmt.prompts(sample_df.head(11)), add_special_tokens=False)["input_ids"]
    greedy = SamplingConfig(top_k=1, batch_size=4, workers=1, precision=ROW_EXACT)
    here = _sharded(model, tokenizer, prompts, greedy, seed=0)
    finished, children = [], []
    others = {p.pid for p in multiprocessing.active_children()}  # e.g. joblib's pool, kept alive by an earlier test

    def progress(n: int) -> None:
        finished.append(n)
        children.append(len({p.pid for p in multiprocessing.active_children()} - others))

    sharded = _sharded(model, tokenizer, prompts, replace(greedy, workers=3), 0, progress)
    assert sharded == here
    assert sum(finished) == len(prompts) and len(set(map(tuple, (r[0] for r in here)))) > 1
    assert max(children) == 3, "three worker processes wrote the rows"


def test_worker_processes_are_seeded_and_pass_errors_on(tokenizer, fmt, sample_df):
    model = _tiny_lm(len(tokenizer), seed=3)
    prompts = tokenizer(fmt.prompts(sample_df.head(12)), add_special_tokens=False)["input_ids"]
    cfg = SamplingConfig(batch_size=4, workers=2)
    out = _sharded(model, tokenizer, prompts, cfg, seed=1)
    assert _sharded(model, tokenizer, prompts, cfg, seed=1) == out
    assert _sharded(model, tokenizer, prompts, cfg, seed=2) != out
    with pytest.raises(IndexError):  # a token id past the vocabulary fails in its worker, and here
        _sharded(model, tokenizer, prompts[:-1] + [[len(tokenizer) + 5]], cfg, seed=1)


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
    assert _sharded(model, tokenizer, prompts, SamplingConfig(workers=1), seed=0)  # here it runs
    with pytest.raises(ShopgenError, match="worker died.*--text-workers 1"):
        _sharded(model, tokenizer, prompts, SamplingConfig(workers=2), seed=0)


def test_workers_default_to_one_per_thread_when_each_gets_enough_rows(monkeypatch):
    from shopgen.text.shards import MIN_SHARD_ROWS, plan

    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    assert plan(10 * MIN_SHARD_ROWS, None) == 4
    assert plan(2 * MIN_SHARD_ROWS, None) == 2
    assert plan(MIN_SHARD_ROWS - 1, None) == 1
    assert plan(5, 8) == 5 and plan(100, 3) == 3


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
        weight = text.model_.get_output_embeddings().weight
        weight[controls] = 3 * weight[text._id(END)]
    texts, _, _ = text.generate(sample_df.head(40), seed=0, allow_copies=True, show_progress=False)
    cells = [v for v in texts.to_numpy().ravel() if isinstance(v, str)]
    assert len(cells) >= 40
    assert not [v for v in cells if any(ch not in "\n\t" and unicodedata.category(ch) == "Cc" for ch in v)]
