"""Incremental forward passes with a KV cache, for the batched sampler.

HF's DynamicCache grows by concatenation, copying the whole cache at every generated token; at batch
64 and 200 tokens of context that copy costs more than the model (measured: 34 ms a step vs 12 ms
for the same step over a cache written in place). `SlotDecoder` runs GPT-2 weights over a cache
allocated once, one slot per row, each slot filled from index 0: a finished row's slot is refilled with
a new row while the others keep going (continuous batching). Its attention runs in the native kernel
(kernels.py) where one could be built, else through torch ops over groups of slots (`slot_groups`). Other
architectures (a `--text-base` checkpoint) go through `HFDecoder`.

`SlotDecoder(..., precision="bf16")` runs the weight matmuls on bf16 copies of the weights (inputs cast
to bf16, outputs back to fp32; layer norms, residuals, attention and the draw stay fp32): it pays where
the CPU multiplies bf16 natively. `precision="int8"` packs int8 weights (one scale per output channel)
for torch's dynamic quantized linear, which quantizes each matmul's input per call: it pays where bf16 is
emulated, at ~2 % relative error in a projection's output. Which one a machine runs faster is measured,
not assumed (precision.py); the timings are in benchmarks/results/.
"""

from __future__ import annotations

import inspect
import warnings
from functools import partial

import torch
import torch.nn.functional as F
from transformers import GPT2LMHeadModel

from shopgen.text import kernels


def closing_up(active: torch.Tensor) -> torch.Tensor:
    """The permutation (new slot -> old slot) that puts the active slots first, in their order."""
    return torch.cat([active.nonzero().squeeze(1), (~active).nonzero().squeeze(1)])


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
    """GPT-2 over a preallocated per-slot cache: writes in place, attention over a view of it."""

    def __init__(self, model: GPT2LMHeadModel, slots: int, max_len: int, bias: torch.Tensor | None = None,
                 precision: str = "fp32") -> None:
        cfg = model.config
        self.t = model.transformer
        # (weight (in, out), bias) per projection, in the matmul's type: fp32 ones are the model's own
        self.projections = [
            tuple(prepare(m.weight, m.bias, precision) for m in (b.attn.c_attn, b.attn.c_proj, b.mlp.c_fc, b.mlp.c_proj))
            for b in self.t.h
        ]
        head_bias = torch.zeros(model.lm_head.weight.shape[0]) if bias is None else bias  # the ban list, in the matmul
        self.head = prepare(model.lm_head.weight.t(), head_bias, precision)
        self.n_head, self.head_dim = cfg.n_head, cfg.n_embd // cfg.n_head
        # gelu_new is tanh-approximated GELU; HF computes it in six elementwise ops, this in one (native: gelu.c)
        self.gelu = "none" if cfg.activation_function == "gelu" else "tanh"
        self.native = kernels.kernel()
        if self.native is not None and self.gelu == "tanh":
            self.activation = partial(kernels.gelu_tanh_, self.native)
        else:
            self.activation = partial(F.gelu, approximate=self.gelu)
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
        cfg = getattr(model, "config", None)
        return (
            type(model) is GPT2LMHeadModel
            and cfg.scale_attn_weights and not cfg.scale_attn_by_inverse_layer_idx
            and not cfg.reorder_and_upcast_attn and cfg.activation_function in ("gelu_new", "gelu_pytorch_tanh", "gelu")
        )

    def _qkv(self, i: int, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        b, n, _ = x.shape
        q, k, v = project(self.t.h[i].ln_1(x), self.projections[i][0]).split(self.n_head * self.head_dim, dim=2)
        return tuple(z.view(b, n, self.n_head, self.head_dim).transpose(1, 2) for z in (q, k, v))

    def _finish(self, i: int, x: torch.Tensor, att: torch.Tensor) -> torch.Tensor:
        """The rest of block `i` after attention; `att` has heads merged, in `x`'s layout."""
        _, proj, fc, fc_proj = self.projections[i]
        x = x + project(att, proj)
        return x + project(self.activation(project(self.t.h[i].ln_2(x), fc)), fc_proj)

    @staticmethod
    def _merged(att: torch.Tensor) -> torch.Tensor:
        """(batch, heads, tokens, head_dim) -> (batch, tokens, heads * head_dim)."""
        b, _, n, _ = att.shape
        return att.transpose(1, 2).reshape(b, n, -1)

    def keep(self, slots: torch.Tensor) -> None:
        """Only these slots go on, renumbered 0..len(slots)-1 in this order."""
        self.k, self.v, self.lengths = self.k[:, slots], self.v[:, slots], self.lengths[slots]

    @property
    def orders_slots(self) -> bool:
        """Whether slot order matters: the native kernel reads each slot's own cells wherever it sits."""
        return self.native is None

    def compact(self, active: torch.Tensor) -> torch.Tensor:
        """Move the `active` slots to the front, in their order, and the idle ones behind them; returns
        the permutation (new slot -> old slot) for the caller's own per-slot state (the identity, and
        nothing moves, when slot order does not matter).

        Rows grow together, so slots kept in their order stay ordered by age, and so nearly by length, and
        rows that join later go last: neighbours need similar cache spans (see `slot_groups`). Only the moved
        slots' written cells are copied (a full reorder copied the whole cache, 67 ms at batch 128)."""
        if not self.orders_slots:
            return torch.arange(len(active))
        perm = closing_up(active)
        self.move(perm, torch.arange(len(perm)) < int(active.sum()))
        return perm

    def move(self, perm: torch.Tensor, live: torch.Tensor) -> None:
        """Slot i takes slot perm[i]'s row where `live[i]`, else goes idle. Moves go front to back, in
        place: every live perm[i] >= i, as when rows close up over the idle slots."""
        lengths, sources = self.lengths.tolist(), perm.tolist()
        for i in (live & (perm != torch.arange(len(perm)))).nonzero().squeeze(1).tolist():
            src, n = sources[i], lengths[sources[i]]
            self.k[:, i, :, :n] = self.k[:, src, :, :n]
            self.v[:, i, :, :n] = self.v[:, src, :, :n]
        self.lengths = torch.where(live, self.lengths[perm], 0)

    def idle(self, done: torch.Tensor) -> None:
        """Slots without a row write at 0 and are never read: their cache does not grow."""
        self.lengths[done] = 0

    @torch.no_grad()
    def prefill(self, slots: torch.Tensor, prefixes: list[list[int]]) -> None:
        """Write the cache of new rows' prefixes into `slots` (they attend only to themselves).

        Equal prefixes run once and their cache is copied: every shadow of a guided refill starts with the
        same empty prompt, padded to the batch's longest prompt, and they were half its prefill rows. No
        logits are taken here (a row's first marker joins the next step), so the last block stops once its
        keys and values are written: its attention and MLP were 19 % of a prefill's matmul work."""
        self.lengths[slots] = 0
        width = max(map(len, prefixes))
        if width == 0:
            return
        distinct: dict[tuple[int, ...], int] = {}
        which = torch.tensor([distinct.setdefault(tuple(p), len(distinct)) for p in prefixes])
        ids = torch.tensor([list(p) + [0] * (width - len(p)) for p in distinct])  # right padding, never attended
        x = self.t.wte(ids) + self.t.wpe(torch.arange(width))
        for i in range(len(self.t.h)):
            q, k, v = self._qkv(i, x)
            self._write(i, slots, width, k[which], v[which])
            if i + 1 == len(self.t.h):
                break
            x = self._finish(i, x, self._merged(F.scaled_dot_product_attention(q, k, v, is_causal=True)))
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
        groups = slot_groups(at)
        span = self.k.shape[3]
        # (slot, head, at[slot]) as a row of each layer's cache viewed as (slots * heads * span, head_dim)
        cells = ((torch.arange(b)[:, None] * self.n_head + torch.arange(self.n_head)) * span + at[:, None]).view(-1)
        x = self.t.wte(tokens[:, None]) + self.t.wpe(at[:, None])
        for i in range(len(self.t.h)):
            q, k, v = self._qkv(i, x)
            self.k[i].view(-1, self.head_dim).index_copy_(0, cells, k.reshape(-1, self.head_dim))
            self.v[i].view(-1, self.head_dim).index_copy_(0, cells, v.reshape(-1, self.head_dim))
            x = self._finish(i, x, self._merged(self._attend(i, q, groups)))
        self.lengths = self.lengths + 1
        return self._logits(x[:, -1])

    def _native_step(self, tokens: torch.Tensor, slots: torch.Tensor | None) -> torch.Tensor:
        """`step` with one kernel call per layer for the cache write and attention (kernels.py)."""
        at = self.lengths if slots is None else self.lengths[slots]
        x = self.t.wte(tokens) + self.t.wpe(at)
        scale = self.head_dim**-0.5
        for i, block in enumerate(self.t.h):
            qkv = project(block.ln_1(x), self.projections[i][0])
            att = kernels.decode_attention(self.native, qkv, self.k[i], self.v[i], self.ks[i], self.vs[i], at, scale, slots)
            x = self._finish(i, x, att)
        if slots is None:
            self.lengths = self.lengths + 1
        else:
            self.lengths[slots] += 1
        return self._logits(x)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        """The next-token logits from the last block's output `x` (rows, width)."""
        return project(self.t.ln_f(x), self.head)

    def _attend(self, i: int, q: torch.Tensor, groups: list[tuple]) -> torch.Tensor:
        """Each group of consecutive slots attends over a view of its own cache span: no copies."""
        keys, values = self.k[i], self.v[i]
        q = q * self.head_dim**-0.5
        parts = []
        for lo, hi, span, masked in groups:
            scores = (q[lo:hi] @ keys[lo:hi, :, :span].transpose(-1, -2)).masked_fill_(masked, float("-inf"))
            parts.append(torch.softmax(scores, dim=-1) @ values[lo:hi, :, :span])
        return parts[0] if len(parts) == 1 else torch.cat(parts)


def prepare(weight: torch.Tensor, bias: torch.Tensor, precision: str) -> tuple:
    """A projection (weight (in, out), bias) in the matmul's type: in fp32, the model's own tensors; in bf16,
    copies; in int8, one packed operand (weight quantized per output channel, fp32 bias) and None."""
    if precision == "int8":
        w = weight.detach().t().contiguous()
        scales = (w.abs().amax(dim=1) / 127).clamp_min(1e-12)
        with warnings.catch_warnings():  # torch 2.13 deprecates quantized tensors; its int8 kernels still take them
            warnings.simplefilter("ignore", UserWarning)
            q = torch.quantize_per_channel(w, scales.double(), torch.zeros(len(w), dtype=torch.long), 0, torch.qint8)
        return torch.ops.quantized.linear_prepack(q, bias.detach().float()), None
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    return weight.detach().to(dtype), bias.detach().to(dtype)


def project(x: torch.Tensor, projection: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """`x @ weight + bias` over `x`'s last axis, in the projection's float type; the result in fp32.

    A bf16 matmul runs in oneDNN, which compiles a kernel for each new shape (1.2 ms here, against 0.2 ms
    for the matmul) and keeps 1,024 of them: the rows a step runs change every step, so they are padded
    to one of a few counts (`padded_rows`), and each count is compiled once."""
    weight, bias = projection
    flat = x.reshape(-1, x.shape[-1])
    if bias is None:  # int8: the activations quantized per call (7 bits, which AVX2's int16 sums cannot overflow)
        out = torch.ops.quantized.linear_dynamic(flat, weight, True)
        return out.view(*x.shape[:-1], out.shape[1])
    if flat.dtype == weight.dtype:
        out = torch.addmm(bias, flat, weight)
    else:
        rows = len(flat)
        padded = flat.new_empty((padded_rows(rows), flat.shape[1]), dtype=weight.dtype)
        padded[:rows] = flat  # the cast
        padded[rows:] = 0
        out = torch.addmm(bias, padded, weight)[:rows].float()
    return out.view(*x.shape[:-1], weight.shape[1])


def padded_rows(rows: int) -> int:
    """`rows` rounded up: to 16 or 32, then to a multiple of 32, past 512 to a multiple of 1/8 of the
    power of two at or below it: 41 counts up to 4,096, never more than 31 rows or 1/8 more than asked."""
    step = 16 if rows <= 32 else max(32, 1 << max(rows.bit_length() - 4, 0))
    return -(-rows // step) * step


MIN_GROUP = 8  # slots: a group costs ~4 ops a layer, worth it only when it skips enough cache
GROUP_FILL = 0.8  # a slot joins the open group while it needs at least this share of the group's span


def slot_groups(at: torch.Tensor) -> list[tuple]:
    """Runs of consecutive slots, each with the cache span its longest slot reaches and the mask of the rest.

    Continuous batching mixes rows of every length: attending over the longest row's span for every slot
    read ~4x the cache that the rows hold (dmart, batch 64: mean span 241, mean length ~60). The driver
    keeps slots in order of age (`compact`), so runs of similar length are neighbours and each run reads
    a view of the cache. (Ranges of positions with the slots that reach each, gathered, cost 8 ms a step
    at batch 128 on dmart: the gathers copied more cache than the attention read.)
    """
    lengths = at.tolist()
    bounds, lo, span = [], 0, lengths[0] + 1
    for j in range(1, len(lengths)):
        need = lengths[j] + 1
        if j - lo < MIN_GROUP:
            span = max(span, need)
        elif need > span or need < GROUP_FILL * span:
            bounds.append((lo, j, span))
            lo, span = j, need
    bounds.append((lo, len(lengths), span))
    return [(lo, hi, span, (torch.arange(span)[None, :] > at[lo:hi, None])[:, None, None, :])
            for lo, hi, span in bounds]
