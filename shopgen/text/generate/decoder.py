"""KV caches for the batched sampler: the GPT's decoding step (text/model.py) over a cache written in place.

HF's DynamicCache grows by concatenation, copying the whole cache at every generated token; at batch
64 and 200 tokens of context that copy costs more than the model (measured: 34 ms a step vs 12 ms
for the same step over a cache written in place). `SlotDecoder` keeps a cache allocated once, one slot per
row, each slot filled from index 0: a finished row's slot is refilled with a new row while the others keep
going (continuous batching). Its attention runs in the native kernel (text/kernels) where one could be
built, else through torch ops over the longest slot's span. Other architectures (a `--text-base`
checkpoint that is not GPT-2) go through `HFDecoder`.

The weight matmuls run in the sampling precision (`GPT.decoding_weights`, text/linear.py): bf16 copies of
the weights or int8 ones, inputs cast, outputs back to fp32; layer norms, residuals, attention and the
draw stay fp32.
"""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F

from shopgen.text import kernels
from shopgen.text.model import GPT, merge_heads


class HFDecoder:
    """Any causal LM through its own forward and DynamicCache; rows share one (left-padded) length.

    Both decoders return float logits with `bias` (the sampler's ban list: 0 or -inf per token) added.
    """

    def __init__(self, model: torch.nn.Module, bias: torch.Tensor | None = None) -> None:
        self.model, self.past, self.bias = model, None, bias
        # newer transformers 5.x call `past_key_values` `cache` (the old name goes in 5.40); earlier 5.x know only it
        self.cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"

    def __call__(self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions,
                         use_cache=True, **{self.cache_arg: self.past})
        self.past = getattr(out, self.cache_arg)
        logits = out.logits[:, -1, :].float()
        return logits if self.bias is None else logits + self.bias

    def select(self, keep: torch.Tensor) -> None:
        self.past.batch_select_indices(keep)


class SlotDecoder:
    """A GPT over a preallocated per-slot cache: writes in place, attention over a view of it."""

    def __init__(self, model: GPT, slots: int, max_len: int, bias: torch.Tensor | None = None,
                 precision: str = "fp32") -> None:
        cfg = model.config
        self.model = model
        self.weights = model.decoding_weights(precision, bias)  # the ban list rides in the head's matmul
        self.n_head, self.head_dim = cfg.n_head, cfg.n_embd // cfg.n_head
        self.native = kernels.kernel()
        shape = (cfg.n_layer, slots, cfg.n_head, max_len, self.head_dim)
        dtype = torch.float32 if self.native is None else kernels.CACHE_DTYPE  # the kernel's cache is int8
        # torch's masked cells still enter 0 * value, so they must be zeros. The kernel reads only cells it
        # wrote, so its cache is left unzeroed and the pages rows never reach are never touched: 1,024 guided
        # dmart rows on one thread ran 1.06x faster and peaked at 0.95 GB instead of 1.5 (a shadow's span
        # holds only its prompt and name)
        alloc = torch.zeros if self.native is None else torch.empty
        self.k, self.v = alloc(shape, dtype=dtype), alloc(shape, dtype=dtype)
        # the kernel's per-vector scales (kernels.quantize); the torch path keeps fp32 values and needs none
        self.ks, self.vs = (alloc(shape[:4]), alloc(shape[:4])) if self.native is not None else (None, None)
        self.lengths = torch.zeros(slots, dtype=torch.long)  # cache entries written per slot

    @staticmethod
    def supports(model: torch.nn.Module) -> bool:
        return isinstance(model, GPT)

    def keep(self, slots: torch.Tensor) -> None:
        """Only these slots go on, renumbered 0..len(slots)-1 in this order."""
        self.k, self.v, self.lengths = self.k[:, slots], self.v[:, slots], self.lengths[slots]

    @property
    def runs_idle_slots(self) -> bool:
        """Whether a step computes the slots that hold no row: the torch path does, the native kernel does not."""
        return self.native is None

    def idle(self, done: torch.Tensor) -> None:
        """Slots without a row write at 0 and are never read: their cache does not grow."""
        self.lengths[done] = 0

    @torch.no_grad()
    def prefill(self, slots: torch.Tensor, prefixes: list[list[int]]) -> None:
        """Write the cache of new rows' prefixes into `slots` (they attend only to themselves).

        Equal prefixes run once and their cache is copied: every shadow of a guided refill starts with the
        same empty prompt, padded to the batch's longest prompt, and they were half its prefill rows. No
        logits are taken here (a row's first marker joins the next step)."""
        self.lengths[slots] = 0
        width = max(map(len, prefixes))
        if width == 0:
            return
        distinct: dict[tuple[int, ...], int] = {}
        which = torch.tensor([distinct.setdefault(tuple(p), len(distinct)) for p in prefixes])
        ids = torch.tensor([list(p) + [0] * (width - len(p)) for p in distinct])  # right padding, never attended

        def attend(i: int, qkv: torch.Tensor) -> torch.Tensor:
            q, k, v = self.model.heads(qkv)
            self._write(i, slots, width, k[which], v[which])
            return merge_heads(F.scaled_dot_product_attention(q, k, v, is_causal=True))

        self.model.decode(ids, torch.arange(width), attend, self.weights, logits=False)
        self.lengths[slots] = torch.tensor([len(p) for p in prefixes])

    def _write(self, i: int, slots: torch.Tensor, width: int, k: torch.Tensor, v: torch.Tensor) -> None:
        """Layer `i`'s keys and values (slots, heads, width, head_dim) into cells 0..width-1 of `slots`."""
        if self.ks is None:
            self.k[i, slots, :, :width], self.v[i, slots, :, :width] = k, v
            return
        for cache, scales, x in ((self.k, self.ks, k), (self.v, self.vs, v)):
            cache[i, slots, :, :width], scales[i, slots, :, :width] = kernels.quantize(x)

    @torch.no_grad()
    def step(self, tokens: torch.Tensor, slots: torch.Tensor | None = None) -> torch.Tensor:
        """Feed one token to each of `slots` (default: every slot), at the slot's own position; their logits
        for the next token, in that order. The other slots keep their cache and length: the native kernel
        does not run them; the torch path runs every slot and puts the others' lengths back."""
        if self.native is not None:
            return self._native_step(tokens, slots)
        if slots is None:
            return self._torch_step(tokens)
        full = torch.zeros(len(self.lengths), dtype=torch.long)
        full[slots] = tokens
        before = self.lengths.clone()
        logits = self._torch_step(full)
        before[slots] += 1
        self.lengths = before
        return logits[slots]

    def _torch_step(self, tokens: torch.Tensor) -> torch.Tensor:
        b = len(tokens)
        at = self.lengths
        span = int(at.max()) + 1  # every slot attends over the longest one's cells, the rest masked
        future = (torch.arange(span)[None, :] > at[:, None])[:, None, None, :]
        # (slot, head, at[slot]) as a row of each layer's cache viewed as (slots * heads * cells, head_dim)
        cells = ((torch.arange(b)[:, None] * self.n_head + torch.arange(self.n_head)) * self.k.shape[3] + at[:, None]).view(-1)

        def attend(i: int, qkv: torch.Tensor) -> torch.Tensor:
            q, k, v = self.model.heads(qkv)
            self.k[i].view(-1, self.head_dim).index_copy_(0, cells, k.reshape(-1, self.head_dim))
            self.v[i].view(-1, self.head_dim).index_copy_(0, cells, v.reshape(-1, self.head_dim))
            scores = (q * self.head_dim**-0.5) @ self.k[i, :, :, :span].transpose(-1, -2)
            return merge_heads(torch.softmax(scores.masked_fill_(future, float("-inf")), dim=-1) @ self.v[i, :, :, :span])

        logits = self.model.decode(tokens[:, None], at[:, None], attend, self.weights)
        self.lengths = self.lengths + 1
        return logits[:, -1]

    def _native_step(self, tokens: torch.Tensor, slots: torch.Tensor | None) -> torch.Tensor:
        """`step` with one kernel call per layer for the cache write and attention (text/kernels)."""
        at = self.lengths if slots is None else self.lengths[slots]
        scale = self.head_dim**-0.5

        def attend(i: int, qkv: torch.Tensor) -> torch.Tensor:
            return kernels.decode_attention(self.native, qkv, self.k[i], self.v[i], self.ks[i], self.vs[i], at, scale, slots)

        logits = self.model.decode(tokens, at, attend, self.weights)
        if slots is None:
            self.lengths = self.lengths + 1
        else:
            self.lengths[slots] += 1
        return logits
