"""Incremental forward passes with a KV cache, for the batched sampler.

HF's DynamicCache grows by concatenation, copying the whole cache at every generated token; at batch
64 and 200 tokens of context that copy costs more than the model (measured: 34 ms a step vs 12 ms
for the same step over a cache written in place). `SlotDecoder` runs GPT-2 weights over a cache
allocated once, one slot per row, each slot filled from index 0: a finished row's slot is refilled with
a new row while the others keep going (continuous batching). Other architectures (a `--text-base`
checkpoint) go through `HFDecoder`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import GPT2LMHeadModel


class HFDecoder:
    """Any causal LM through its own forward and DynamicCache; rows share one (left-padded) length.

    Both decoders return float logits with `bias` (the sampler's ban list: 0 or -inf per token) added.
    """

    def __init__(self, model: torch.nn.Module, bias: torch.Tensor | None = None) -> None:
        self.model, self.past, self.bias = model, None, bias

    def __call__(self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                         past_key_values=self.past, use_cache=True)
        self.past = out.past_key_values
        logits = out.logits[:, -1, :].float()
        return logits if self.bias is None else logits + self.bias

    def select(self, keep: torch.Tensor) -> None:
        self.past.batch_select_indices(keep)


class SlotDecoder:
    """GPT-2 over a preallocated per-slot cache: writes in place, attention over a view of it."""

    def __init__(self, model: GPT2LMHeadModel, slots: int, max_len: int, bias: torch.Tensor | None = None) -> None:
        cfg = model.config
        self.bias = bias  # added inside the head's matmul
        self.t, self.head = model.transformer, model.lm_head
        self.n_head, self.head_dim = cfg.n_head, cfg.n_embd // cfg.n_head
        # gelu_new is tanh-approximated GELU; HF computes it in six elementwise ops, this in one.
        self.gelu = "none" if cfg.activation_function == "gelu" else "tanh"
        shape = (cfg.n_layer, slots, cfg.n_head, max_len, self.head_dim)
        self.k, self.v = torch.zeros(shape), torch.zeros(shape)  # masked cells still enter 0 * value
        self.lengths = torch.zeros(slots, dtype=torch.long)  # cache entries written per slot

    @staticmethod
    def supports(model: torch.nn.Module) -> bool:
        cfg = getattr(model, "config", None)
        return (
            type(model) is GPT2LMHeadModel
            and cfg.scale_attn_weights and not cfg.scale_attn_by_inverse_layer_idx
            and not cfg.reorder_and_upcast_attn and cfg.activation_function in ("gelu_new", "gelu_pytorch_tanh", "gelu")
        )

    def _qkv(self, block: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        b, n, _ = x.shape
        q, k, v = block.attn.c_attn(block.ln_1(x)).split(self.n_head * self.head_dim, dim=2)
        return tuple(z.view(b, n, self.n_head, self.head_dim).transpose(1, 2) for z in (q, k, v))

    def _finish(self, block: torch.nn.Module, x: torch.Tensor, att: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        x = x + block.attn.c_proj(att.transpose(1, 2).reshape(b, n, -1))
        mlp = block.mlp
        return x + mlp.c_proj(F.gelu(mlp.c_fc(block.ln_2(x)), approximate=self.gelu))

    def keep(self, slots: torch.Tensor) -> None:
        """Only these slots go on, renumbered 0..len(slots)-1 in this order."""
        self.k, self.v, self.lengths = self.k[:, slots], self.v[:, slots], self.lengths[slots]

    def idle(self, done: torch.Tensor) -> None:
        """Slots without a row write at 0 and are never read: their cache does not grow."""
        self.lengths[done] = 0

    @torch.no_grad()
    def prefill(self, slots: torch.Tensor, prefixes: list[list[int]]) -> None:
        """Write the cache of new rows' prefixes into `slots` (they attend only to themselves)."""
        self.lengths[slots] = 0
        width = max(map(len, prefixes))
        if width == 0:
            return
        ids = torch.tensor([p + [0] * (width - len(p)) for p in prefixes])  # right padding, never attended
        x = self.t.wte(ids) + self.t.wpe(torch.arange(width))
        for i, block in enumerate(self.t.h):
            q, k, v = self._qkv(block, x)
            self.k[i, slots, :, :width] = k
            self.v[i, slots, :, :width] = v
            x = self._finish(block, x, F.scaled_dot_product_attention(q, k, v, is_causal=True))
        self.lengths[slots] = torch.tensor([len(p) for p in prefixes])

    @torch.no_grad()
    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """Feed one token per slot at the slot's own position; logits for the next token of every slot."""
        b = len(tokens)
        at = self.lengths
        chunks = _chunks(at)
        span = self.k.shape[3]
        # (slot, head, at[slot]) as a row of each layer's cache viewed as (slots * heads * span, head_dim)
        cells = ((torch.arange(b)[:, None] * self.n_head + torch.arange(self.n_head)) * span + at[:, None]).view(-1)
        x = self.t.wte(tokens[:, None]) + self.t.wpe(at[:, None])
        for i, block in enumerate(self.t.h):
            q, k, v = self._qkv(block, x)
            self.k[i].view(-1, self.head_dim).index_copy_(0, cells, k.reshape(-1, self.head_dim))
            self.v[i].view(-1, self.head_dim).index_copy_(0, cells, v.reshape(-1, self.head_dim))
            x = self._finish(block, x, self._attend(i, q, chunks))
        self.lengths = at + 1
        h = self.t.ln_f(x[:, -1])
        return self.head(h) if self.bias is None else torch.addmm(self.bias, h, self.head.weight.t())

    def _attend(self, i: int, q: torch.Tensor, chunks: list[tuple]) -> torch.Tensor:
        """Each slot's query over its own cache positions, chunk by chunk, merged by online softmax."""
        keys, values = self.k[i], self.v[i]
        q = q * self.head_dim**-0.5
        out = total = top = None
        for lo, hi, rows, masked in chunks:
            if rows is None:
                qq, kk, vv = q, keys[:, :, lo:hi], values[:, :, lo:hi]
            else:
                qq, kk, vv = q[rows], keys[rows, :, lo:hi], values[rows, :, lo:hi]
            scores = (qq @ kk.transpose(-1, -2)).masked_fill_(masked, float("-inf"))
            peak = scores.amax(-1, keepdim=True)
            weights = (scores - peak).exp_()
            part, mass = weights @ vv, weights.sum(-1, keepdim=True)
            if out is None:
                out, total, top = part, mass, peak
                continue
            new_top = torch.maximum(top[rows], peak)
            old, new = (top[rows] - new_top).exp_(), (peak - new_top).exp_()
            out[rows] = out[rows] * old + part * new
            total[rows] = total[rows] * old + mass * new
            top[rows] = new_top
        return out / total


CHUNK_ALIGN = 16
CHUNK_SHARES = (0.5, 0.875)  # chunk edges at these quantiles of the slots' lengths


def _chunks(at: torch.Tensor) -> list[tuple]:
    """Cache position ranges and the slots that reach into each, so a short row skips a long row's span.

    Continuous batching mixes rows of every length: attending over the longest row's span for every
    slot read ~4x the cache that the rows hold (dmart, batch 64: mean span 241, mean length ~60).
    The first chunk serves every slot from a view; later ones gather only the slots that reach them
    (measured: reading a later chunk for every slot, masked, is no faster even when half reach it).
    """
    ordered = at.sort().values.tolist()
    span = ordered[-1] + 1
    edges = [0]
    for share in CHUNK_SHARES:
        edge = -(-(ordered[int(share * (len(ordered) - 1))] + 1) // CHUNK_ALIGN) * CHUNK_ALIGN
        if edges[-1] < edge < span:
            edges.append(edge)
    edges.append(span)
    out = []
    for lo, hi in zip(edges, edges[1:]):
        rows = None if lo == 0 else (at >= lo).nonzero().squeeze(1)
        reach = at if rows is None else at[rows]
        masked = (torch.arange(lo, hi)[None, :] > reach[:, None])[:, None, None, :]
        out.append((lo, hi, rows, masked))
    return out
