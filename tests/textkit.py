"""Small models and helpers the text tests share (not a test module)."""

from __future__ import annotations

import os

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from shopgen.text.generate.sampler import FieldSpec, generate_fields
from shopgen.text.model import GPT
from shopgen.text.prompt import END, NULL, PAD, marker

# The tests that a row's greedy text is the same however it is batched sample in fp32: int8 (which "auto"
# picks where it is fastest) quantizes a matmul's input with one scale for all its rows, so a row's rounding
# depends on its batch-mates
ROW_EXACT = "fp32"


def native_kernel():
    """The compiled native kernels; CI machines have a C compiler, so there they must build."""
    from shopgen.text import kernels

    fn = kernels.kernel()
    if fn is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the native kernels did not build")
        pytest.skip("no C compiler here: the native kernel cannot be built")
    return fn


def tiny_hf(vocab: int, seed: int = 0, **config) -> GPT2LMHeadModel:
    """Hugging Face's own GPT-2, tiny: the reference the GPT is checked against, and a model of another class."""
    torch.manual_seed(seed)
    cfg = GPT2Config(**{"vocab_size": vocab, "n_positions": 128, "n_embd": 32, "n_layer": 1, "n_head": 2, **config})
    return GPT2LMHeadModel(cfg).eval()


def tiny_lm(vocab: int, seed: int = 0) -> GPT:
    """The package's GPT with `tiny_hf`'s weights."""
    return GPT.from_hf(tiny_hf(vocab, seed))


def generate_with(model, tokenizer, prompts, caps, cfg, seed, empty=None):
    tid = tokenizer.convert_tokens_to_ids
    empty = [tid(NULL)] if empty is None else empty  # the default sampling guides against an empty prompt
    fields = [FieldSpec(tid(marker("name")), caps[0], False), FieldSpec(tid(marker("description")), caps[1], True)]
    return generate_fields(
        model, prompts, fields, end_id=tid(END), pad_id=tid(PAD), null_id=tid(NULL), banned_ids=[tid(PAD)],
        cfg=cfg, generator=torch.Generator().manual_seed(seed), empty_prompt=empty,
    )


def int8_cache(slots: int, heads: int, span: int, dim: int) -> tuple[torch.Tensor, ...]:
    """Zeroed int8 keys and values and their float scales, as the decoder gives the kernel."""
    return (torch.zeros(slots, heads, span, dim, dtype=torch.int8), torch.zeros(slots, heads, span, dim, dtype=torch.int8),
            torch.zeros(slots, heads, span), torch.zeros(slots, heads, span))


def sharded(model, tokenizer, prompts, cfg, seed, on_batch=None):
    from shopgen.text.generate.shards import generate_sharded

    tid = tokenizer.convert_tokens_to_ids
    fields = [FieldSpec(tid(marker("name")), 8, False), FieldSpec(tid(marker("description")), 12, True)]
    return generate_sharded(
        model, prompts, fields, end_id=tid(END), pad_id=tid(PAD), null_id=tid(NULL), banned_ids=[tid(PAD)],
        cfg=cfg, generator=torch.Generator().manual_seed(seed), empty_prompt=[tid(NULL)], on_batch=on_batch,
    )
