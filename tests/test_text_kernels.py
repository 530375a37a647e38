"""The native kernels: the int8-cache attention, the draw and the GELU, against torch's own ops."""

from __future__ import annotations

import functools
import os

import pytest
import torch
from textkit import int8_cache, native_kernel, tiny_lm


def test_native_kernel_refuses_a_full_cache_and_writes_no_cell_past_it():
    """A slot with no cell left raises instead of writing past the cache (the C loop has no bounds of its own);
    the other slots are written as usual. A row's slot index past the cache is refused before the kernel runs."""
    from shopgen.text import kernels

    fn = native_kernel()
    k, v, ks, vs = int8_cache(2, 2, 4, 8)
    qkv = torch.ones(2, 3 * 16)
    kernels.decode_attention(fn, qkv, k, v, ks, vs, torch.tensor([3, 0]), 1.0)
    assert k[0, :, 3].eq(127).all() and k[1, :, 0].eq(127).all() and ks[0, :, 3].eq(1 / 127).all()
    k.zero_()
    with pytest.raises(IndexError, match="cache is full"):
        kernels.decode_attention(fn, qkv, k, v, ks, vs, torch.tensor([4, 1]), 1.0)
    assert k[0].eq(0).all() and k[1, :, 1].eq(127).all()
    with pytest.raises(ValueError, match="slots inside the cache"):  # a slot index past the cache
        kernels.decode_attention(fn, qkv, k, v, ks, vs, torch.tensor([0, 0]), 1.0, torch.tensor([1, 2]))


def test_native_kernel_keeps_an_int8_cache_and_its_portable_build_agrees(tmp_path):
    """The cache holds each key and value vector as int8 with a scale (absmax / 127), rounded as
    `kernels.quantize` rounds the prefill's, and attention over it is the float attention of the values the
    cells stand for. The build without -march=native (no AVX2: the plain C loops) writes the same bytes and
    gives the same output."""
    from shopgen.text import kernels

    fast = native_kernel()
    compiler = os.environ.get("CC") or "cc"
    assert kernels.build(compiler, kernels.FLAG_SETS[1], tmp_path / "portable.so")
    portable = kernels.load(tmp_path / "portable.so")
    torch.manual_seed(0)
    slots, heads, span, dim = 3, 2, 6, 64
    qkv = torch.randn(slots, 3 * heads * dim) * 3
    qkv[1, heads * dim: heads * dim + dim] = 0.0  # a zero key vector: scale 0, no division by it
    qkv[1, 2 * heads * dim: 2 * heads * dim + 4] = torch.tensor([1e-6, -3e-7, 7e4, 1 / 3])  # one huge entry
    pos = torch.tensor([5, 0, 2])
    history = kernels.quantize(torch.randn(slots, heads, span, dim))
    outs, caches = [], []
    for lib in (fast, portable):
        k, v = history[0].clone(), history[0].flip(-1).contiguous()
        ks, vs = history[1].clone(), history[1].flip(-1).contiguous()
        outs.append(kernels.decode_attention(lib, qkv, k, v, ks, vs, pos, dim**-0.5))
        caches.append((k, v, ks, vs))
    for a, b in zip(*caches):
        assert torch.equal(a, b)
    k, v, ks, vs = caches[0]
    rows = torch.arange(slots)
    new_k, new_ks = kernels.quantize(qkv[:, heads * dim: 2 * heads * dim].view(slots, heads, dim))
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
    from shopgen.text import kernels

    fn = native_kernel()
    torch.manual_seed(0)
    x = torch.cat([torch.randn(5000) * 3, torch.tensor([0.0, -0.0, 1e-30, -1e-30, -12.0, 12.0, -95.0, 95.0, 3e4])])
    out = kernels.gelu_tanh_(fn, x.clone())
    # torch's float kernel rounds 1 + tanh(u) to 0 below x ~ -5 (true values ~1e-7): hence the atol
    assert torch.allclose(out, torch.nn.functional.gelu(x, approximate="tanh"), rtol=2e-6, atol=3e-7)
    d = x.double()  # 0.5 x (1 + tanh u) = x sigmoid(2u), tiny values included, to the rounding of u in float
    exact = d * torch.sigmoid(2 * (2 / torch.pi) ** 0.5 * (d + 0.044715 * d**3))
    assert torch.allclose(out.double(), exact, rtol=1e-5, atol=1e-30)  # u rounded to float: ~60 x 1e-7


def test_native_training_gelu_has_torchs_values_and_gradients():
    """gelu.c's training pass against torch's tanh GELU and autograd, on values from -95 to 3e4, across the
    threads' split of a long tensor and a short one (one thread); the GPT takes torch's for bf16."""
    from shopgen.text import kernels
    from shopgen.text.model import GPT, GPTConfig

    lib = native_kernel()
    act = functools.partial(kernels.gelu_tanh, lib)
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
    with pytest.raises(ValueError):
        act(half)
    assert torch.equal(GPT(GPTConfig(vocab_size=8)).gelu(half), torch.nn.functional.gelu(half, approximate="tanh"))


def test_native_kernel_builds_into_an_empty_cache(tmp_path, monkeypatch):
    """On a machine with a C compiler (every CI machine) the kernel builds from source, once, into the cache."""
    from shopgen.text import kernels

    monkeypatch.setenv("SHOPGEN_CACHE_DIR", str(tmp_path))
    kernels.kernel.cache_clear()
    try:
        native_kernel()
        built = list(tmp_path.rglob("*.so"))
        assert len(built) == 1 and built[0].parent == kernels.cache_dir()
    finally:
        kernels.kernel.cache_clear()


def test_without_a_working_compiler_the_decoder_keeps_its_torch_path(tmp_path, monkeypatch):
    """A compiler that fails leaves no file behind and no kernel: the slot decoder attends through torch."""
    from shopgen.text import kernels
    from shopgen.text.generate.decoder import SlotDecoder

    monkeypatch.setenv("CC", "false")
    monkeypatch.setenv("SHOPGEN_CACHE_DIR", str(tmp_path))
    kernels.kernel.cache_clear()
    try:
        assert kernels.kernel() is None
        assert SlotDecoder(tiny_lm(50), 2, 8).native is None
        assert not list(tmp_path.rglob("*.so"))
    finally:
        kernels.kernel.cache_clear()


def test_native_draw_takes_the_token_at_its_uniform_of_the_kept_top_k_top_p_mass():
    from shopgen.text import kernels

    lib = native_kernel()
    torch.manual_seed(0)
    logits = torch.randn(64, 5000) * 3
    logits[:8, 3:] = float("-inf")  # rows with fewer allowed tokens than k, as after a ban list
    uniforms = torch.rand(64, dtype=torch.float64)
    k, top_p, temperature = 40, 0.9, 0.7
    drawn = kernels.draw(lib, logits, uniforms, k, top_p, temperature)

    values, index = logits.double().topk(k, dim=-1)
    mass = ((values - values[:, :1]) / temperature).exp()
    kept = mass * ((mass.cumsum(-1) - mass) <= top_p * mass.sum(-1, keepdim=True))
    cumulative = kept.cumsum(-1)
    pick = (cumulative > uniforms[:, None] * cumulative[:, -1:]).double().argmax(-1, keepdim=True)
    assert torch.equal(drawn, index.gather(-1, pick).squeeze(-1))
    assert bool((drawn[:8] < 3).all())
