"""The GPT: GPT-2's arithmetic, and Hugging Face GPT-2 directories both ways."""

from __future__ import annotations

import pytest
import torch
from textkit import tiny_hf
from transformers import GPT2LMHeadModel, LlamaConfig

from shopgen.text.model import GPT, GPTConfig


def test_forward_is_hf_gpt2s_and_saved_directories_load_both_ways(tmp_path):
    """The same weights give Hugging Face GPT-2's logits; what the GPT saves, transformers loads as
    GPT2LMHeadModel with the same logits, and a checkpoint transformers saves loads back here."""
    hf = tiny_hf(300, seed=1, n_layer=2, n_inner=48, activation_function="gelu_new")
    model = GPT.from_hf(hf)
    assert model.config.n_inner == 48 and model.config.gelu == "tanh"
    ids = torch.randint(0, 300, (3, 17), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = hf(input_ids=ids).logits
        torch.testing.assert_close(model(ids), want, rtol=1e-5, atol=1e-5)
        model.save_pretrained(tmp_path / "ours")
        theirs = GPT2LMHeadModel.from_pretrained(tmp_path / "ours", local_files_only=True).eval()
        torch.testing.assert_close(theirs(input_ids=ids).logits, want, rtol=1e-5, atol=1e-5)
        hf.save_pretrained(tmp_path / "hf")
        torch.testing.assert_close(GPT.from_pretrained(tmp_path / "hf")(ids), want, rtol=1e-5, atol=1e-5)


def test_exact_gelu_checkpoints_compute_as_hf_does():
    hf = tiny_hf(100, seed=2, activation_function="gelu")
    ids = torch.randint(0, 100, (2, 9), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(GPT.from_hf(hf)(ids), hf(input_ids=ids).logits, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant", [
    {"scale_attn_by_inverse_layer_idx": True}, {"reorder_and_upcast_attn": True}, {"activation_function": "relu"},
    {"scale_attn_weights": False},
])
def test_gpt2_variants_it_does_not_compute_are_refused(variant):
    """A variant's switch changes the arithmetic: such a checkpoint stays Hugging Face's model, never this one."""
    hf = tiny_hf(50, **variant)
    assert GPTConfig.from_hf(hf.config) is None
    with pytest.raises(ValueError, match="not a plain GPT-2"):
        GPT.from_hf(hf)
    assert GPTConfig.from_hf(LlamaConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1)) is None


def test_a_fresh_gpt_starts_as_gpt2_does():
    """Weights N(0, 0.02), the projections into the residual stream scaled by 1/sqrt(2 * layers), biases zero,
    and the output head is the token embedding."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=2000, block_size=64, n_layer=8, n_head=4, n_embd=128))
    block = model.transformer.h[0]
    assert abs(float(block.attn.c_attn.weight.std()) - 0.02) < 0.002
    assert abs(float(block.mlp.c_proj.weight.std()) - 0.02 / 4) < 0.0005
    assert float(block.mlp.c_fc.bias.abs().max()) == 0
    logits = model(torch.tensor([[5, 6, 7]]))
    assert logits.shape == (1, 3, 2000)
