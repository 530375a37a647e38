"""Training the GPT: label weights, the fused head loss, lead passes, bf16 autocast and the attention it runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from textkit import native_kernel, tiny_hf
from transformers import GPT2Config, GPT2LMHeadModel

from shopgen.text.loss import IGNORE
from shopgen.text.model import GPT, GPTConfig


def tiny_gpt(block: int) -> GPT:
    return GPT(GPTConfig(vocab_size=32, block_size=block, n_embd=32, n_layer=1, n_head=2))


def test_training_follows_the_label_weights():
    """A part of the text whose weight is 0 is not learned; the same part at weight 1 is."""
    from shopgen.text.train import batch_loss, collate, train_lm

    torch.manual_seed(0)
    def seqs_of(w: float) -> list:  # the last two tokens follow from the second: learnable when weighted
        return [([1, 2 + k % 5, 10 + k % 5, 20 + k % 5], [IGNORE, 2 + k % 5, 10 + k % 5, 20 + k % 5], [0.0, 1.0, w, w])
                for k in range(200)]

    def tail_loss(w: float) -> float:
        model = tiny_gpt(8)
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

    def trained(precision: str) -> tuple[GPT, float]:
        torch.manual_seed(0)
        model = tiny_gpt(8)
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
    assert not torch.equal(fp32.transformer.wte.weight, bf16.transformer.wte.weight)
    assert bf16_loss < 0.1 and abs(bf16_loss - fp32_loss) < 0.05


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
        model = tiny_gpt(16)
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
    from shopgen.text.estimator import lead_length

    end = 3
    ids = [1, 2, 20, 10, 11, end, 21, 12, 13, 14, 15, end]  # prompt, marker, name, end, marker, description, end
    assert lead_length(ids, end) == lead_length(ids, end, 0) == 6
    assert ids[:lead_length(ids, end, 2)] == [1, 2, 20, 10, 11, end, 21, 12, 13]
    assert lead_length(ids, end, 10) == len(ids)
    assert lead_length(ids[:-1], end, 10) == len(ids) - 1  # a cut row without its last end token


def test_loss_on_labelled_positions_only_equals_the_full_hf_loss():
    """Training projects only the labelled positions onto the vocabulary: the GPT's loss is Hugging Face GPT-2's
    full loss for the same weights, and a model of another class takes HF's logits path to the same value."""
    from shopgen.text.train import batch_loss

    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=300, n_positions=64, n_embd=32, n_layer=2, n_head=2)).eval()
    model = GPT.from_hf(hf)
    ids = torch.randint(0, 300, (3, 20))
    mask = torch.ones_like(ids)
    mask[1, 15:] = 0  # padding
    labels = ids.clone()
    labels[:, :6] = IGNORE  # the prompt
    labels[mask == 0] = IGNORE
    full = hf(input_ids=ids, attention_mask=mask, labels=labels).loss
    assert torch.allclose(batch_loss(hf, ids, mask, labels), full, rtol=1e-6, atol=1e-6)
    assert torch.allclose(batch_loss(model, ids, mask, labels), full, rtol=1e-6, atol=1e-6)
    assert torch.allclose(batch_loss(model, ids, mask, labels, torch.full(ids.shape, 3.0)), full, rtol=1e-6, atol=1e-6)
    heavy = torch.ones(ids.shape)
    heavy[:, 10:] = 5.0  # later tokens weigh more: another mean
    assert not torch.allclose(batch_loss(model, ids, mask, labels, heavy), full, rtol=1e-3)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_training_gradients_are_hf_gpt2s(precision):
    """The GPT's loss and every gradient equal Hugging Face GPT-2's for the same weights: in fp32 (SDPA, and the
    native GELU where it builds) to float rounding; under bf16 autocast (the plain attention) to bf16's."""
    from shopgen.text.train import batch_loss

    hf = tiny_hf(300, seed=4, n_layer=2)
    model = GPT.from_hf(hf)
    ids = torch.randint(0, 300, (4, 24), generator=torch.Generator().manual_seed(0))
    labels = ids.clone()
    labels[:, :5] = IGNORE
    grads = []
    for m in (model, hf):
        m.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = batch_loss(m, ids, torch.ones_like(ids), labels)
        loss.backward()
        grads.append((loss.detach(), dict((n, p.grad) for n, p in m.named_parameters())))
    (ours, ours_grad), (theirs, theirs_grad) = grads
    tol = 1e-5 if precision == "fp32" else 3e-2
    torch.testing.assert_close(ours, theirs, rtol=tol, atol=tol)
    for name, grad in ours_grad.items():
        want = theirs_grad[name]
        torch.testing.assert_close(grad, want, rtol=tol, atol=tol * float(want.abs().max()), msg=name)


def test_bf16_rows_are_padded_to_few_counts_at_a_small_cost():
    """oneDNN compiles a kernel per bf16 matmul shape: every row count up to 4,096 maps to one of 41, never
    below itself, never more than 31 rows or 1/8 above it."""
    from shopgen.text.linear import padded_rows

    padded = {rows: padded_rows(rows) for rows in range(1, 4097)}
    assert len(set(padded.values())) == 41
    assert all(rows <= p and (p - rows <= 31 or p <= 1.125 * rows) for rows, p in padded.items())


def test_fp32_training_runs_the_native_gelu_and_the_trained_model_pickles(monkeypatch):
    """train_lm's fp32 passes run gelu.c's activation (torch's under bf16), and the model keeps no handle to
    the library: it pickles, as worker processes started by spawn need."""
    import pickle

    from shopgen.text import kernels
    from shopgen.text.train import train_lm

    native_kernel()
    calls = {"n": 0}
    through = kernels.gelu_tanh

    def counted(lib, x):
        calls["n"] += 1
        return through(lib, x)

    monkeypatch.setattr(kernels, "gelu_tanh", counted)
    seqs = [([1, 2 + k % 5, *range(10, 20)], [IGNORE, IGNORE, *range(10, 20)], [0.0, 0.0] + [1.0] * 10) for k in range(40)]
    for precision, native in (("bf16", False), ("fp32", True)):
        calls["n"] = 0
        model = tiny_gpt(16)
        train_lm(model, seqs, pad_id=0, batch_size=8, learning_rate=1e-3, max_epochs=1, max_seconds=60, seed=0,
                 show_progress=False, precision=precision)
        assert (calls["n"] > 0) == native, precision
    clone = pickle.loads(pickle.dumps(model))
    assert all(torch.equal(a, b) for a, b in zip(clone.state_dict().values(), model.state_dict().values()))
