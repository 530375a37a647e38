"""Batched, seeded generation of several text fields per row with a KV cache (see decoder.py).

Each row walks through its fields: the field's marker is fed (forced), tokens are sampled until the end
token or the field's token cap, then the next marker. Rows stop independently. For the GPT a finished
row's slot is refilled at once with the next waiting row (continuous batching), so the batch stays full
while a few long descriptions finish; other models drop finished rows from their batch instead.
Sampling is top-k, then top-p inside it, then an exact categorical draw: in one native call per step
where the kernels build (text/kernels: draw.c), else in torch ops, `argmax(p / Exp(1))` (no sort over the
whole vocabulary).

Classifier-free guidance (`guidance` w > 0) samples from `(1 + w) * cond - w * uncond` logits: each row
also runs after the empty prompt (every condition unknown), on the same tokens, and the difference
pushes the text toward what its conditions make likely. It costs a second row of decoding per row, while
the row is in a guided field: by default the first (`guided_fields`), the name, which says what the
product is, and the description's first `guided_tokens`, where it picks its topic; the rest of the
description follows unguided, at the cost of one row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from shopgen.text import kernels
from shopgen.text.generate.decoder import HFDecoder, SlotDecoder

COMPACT_SHARE = 4  # the fallback path compacts once a quarter of its batch has finished
REFILL_SHARE = 0.125  # refill once 1/8 of slots is free: measured best or near-best on dmart and sample data
MODEL_ROWS = 256  # rows a decoding step runs by default: 128 guided rows (each runs twice) or 256 unguided


@dataclass(frozen=True)
class FieldSpec:
    marker_id: int
    max_tokens: int
    nullable: bool


@dataclass(frozen=True)
class SamplingConfig:
    """How text is drawn. Defaults were chosen by measurement on real catalogs (docs/text-model.md,
    benchmarks/results/text_sampling.md): top-k 50 and top-p 0.8 gave the most category-faithful text
    with name diversity nearest real text's; a cooler temperature turns descriptions into stock phrases.

    `batch_size`: rows per step (default MODEL_ROWS). `guidance`: classifier-free guidance strength (1 raised
    category consistency and cut stock phrases for ~2x the time; 2 made names repetitive).
    `guided_fields`: how many text fields, from the first, guidance steers (None: all of them);
    `guided_tokens`: how many of the next field's first tokens it still steers, where a description picks
    its topic. `workers`: processes of one thread each, each sampling a shard of the rows (shards.py;
    default one per torch thread). `precision`: the number type of the decoder's weight matmuls (GPT-2
    models); a model's own config says "auto" (TextModel), which it decides before sampling: the faster of
    bf16 and int8 where a timing kept per machine finds it 1.25x fp32's speed, at unchanged text scores.
    """

    temperature: float = 1.0
    top_p: float = 0.8
    top_k: int = 50
    batch_size: int | None = None
    guidance: float = 1.0
    workers: int | None = None
    guided_fields: int | None = 1
    precision: str = "fp32"
    guided_tokens: int = 32

    @property
    def rows_per_step(self) -> int:
        """`batch_size`, or MODEL_ROWS decoder rows: guidance of every field runs each row twice (guidance of
        the name alone, a few rows twice at a time)."""
        return self.batch_size or (MODEL_ROWS // 2 if self.guidance > 0 and self.guided_fields is None else MODEL_ROWS)


def concrete(precision: str) -> str:
    """`precision` itself: "auto" is decided once, by the caller that owns the model (TextModel), so every
    worker and every redraw round multiplies in the same type."""
    if precision not in ("fp32", "bf16", "int8"):
        raise ValueError(f"the sampler runs fp32, bf16 or int8, not {precision!r}: decide 'auto' first "
                         "(TextModel.sampling_precision)")
    return precision


def draw_tokens(logits: torch.Tensor, cfg: SamplingConfig, gen: torch.Generator, lib=None) -> torch.Tensor:
    """One token per row; `logits` are the caller's scratch (divided in place by the temperature).

    With the native library `lib`, one seeded uniform per row picks the token in draw.c."""
    if lib is not None:
        uniforms = torch.rand(len(logits), generator=gen, dtype=torch.float64)
        return kernels.draw(lib, logits.contiguous(), uniforms, cfg.top_k, cfg.top_p, cfg.temperature)
    if cfg.temperature != 1.0:
        logits.div_(max(cfg.temperature, 1e-5))
    values, index = top_k_filter(logits, min(cfg.top_k, logits.shape[-1]))
    probs = torch.softmax(values, dim=-1)
    if cfg.top_p < 1.0:
        outside = probs.cumsum(-1) - probs > cfg.top_p
        probs = probs.masked_fill(outside, 0.0)
    race = torch.empty_like(probs).exponential_(generator=gen)
    return index.gather(-1, (probs / race).argmax(-1, keepdim=True)).squeeze(-1)


TOPK_BLOCK = 32


def top_k_filter(logits: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`logits.topk(k)` through block maxima: the k largest values lie in the k blocks with the largest
    maxima (a block outside them has k block maxima, so k values, at least as large as its own best),
    so a top-k over those k * TOPK_BLOCK candidates replaces one over the whole vocabulary."""
    rows, vocab = logits.shape
    if k * TOPK_BLOCK * 4 > vocab:
        return logits.topk(k, dim=-1)
    pad = -vocab % TOPK_BLOCK
    blocks = (F.pad(logits, (0, pad), value=float("-inf")) if pad else logits).view(rows, -1, TOPK_BLOCK)
    best = blocks.amax(-1).topk(k, dim=-1).indices
    candidates = blocks.gather(1, best[:, :, None].expand(-1, -1, TOPK_BLOCK)).view(rows, -1)
    values, position = candidates.topk(k, dim=-1)
    return values, (best * TOPK_BLOCK).gather(-1, position // TOPK_BLOCK) + position % TOPK_BLOCK


class Walker:
    """Per-row state through the fields: which field, how many tokens in it, what to feed next."""

    def __init__(self, fields: list[FieldSpec], end_id: int, pad_id: int, null_id: int, banned: list[int],
                 vocab: int, cfg: SamplingConfig, gen: torch.Generator) -> None:
        self.guided = len(fields) if cfg.guided_fields is None else cfg.guided_fields
        self.guided_tokens = cfg.guided_tokens
        self.caps = torch.tensor([f.max_tokens for f in fields])
        self.null_ok = torch.tensor([f.nullable for f in fields])
        self.markers = torch.tensor([f.marker_id for f in fields])
        self.end, self.pad, self.null, self.cfg, self.gen = end_id, pad_id, null_id, cfg, gen
        self.bias = torch.zeros(vocab)
        self.bias[banned] = float("-inf")
        lib = kernels.kernel()
        self.native = lib if lib is not None and cfg.top_k <= lib.draw_max_k else None

    def start(self, n: int) -> dict[str, torch.Tensor]:
        zeros = torch.zeros(n, dtype=torch.long)
        return {"field": zeros, "flen": zeros.clone(), "need_marker": zeros.bool(), "done": zeros.bool(),
                "after_null": zeros.bool()}

    def steered(self, s: dict[str, torch.Tensor]) -> torch.Tensor:
        """Rows whose next token guidance steers: unfinished, in a guided field or the next one's first tokens."""
        return ~s["done"] & ((s["field"] < self.guided) | ((s["field"] == self.guided) & (s["flen"] < self.guided_tokens)))

    def advance(self, s: dict[str, torch.Tensor], logits: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Sample one token per row from a decoder's `logits` (the ban list `self.bias` already added), a
        scratch tensor this overwrites; returns (token to feed, recorded token or -1, its field, finished now)."""
        field, flen, need_marker, done = s["field"], s["flen"], s["need_marker"], s["done"]
        first = flen == 0
        logits[:, self.end] = logits[:, self.end].masked_fill(first, float("-inf"))
        logits[:, self.null] = logits[:, self.null].masked_fill(~(first & self.null_ok[field]), float("-inf"))
        after_null = s["after_null"]
        if bool(after_null.any()):  # a null value is one token: end right after it
            logits[after_null] = float("-inf")
            logits[after_null, self.end] = 0.0
        sampled = draw_tokens(logits, self.cfg, self.gen, self.native)
        tok = torch.where(flen + 1 >= self.caps[field], torch.full_like(sampled, self.end), sampled)
        in_text = ~done & ~need_marker
        recorded = torch.where(in_text & (tok != self.end), tok, torch.full_like(tok, -1))
        recorded_field = field
        just_ended = in_text & (tok == self.end)
        flen = torch.where(in_text, flen + 1, flen)
        feed = torch.where(in_text, tok, torch.full_like(tok, self.pad))
        advance = need_marker & ~done  # rows waiting for their next field's marker get it now
        field = torch.where(advance, field + 1, field)
        flen = torch.where(advance, torch.zeros_like(flen), flen)
        feed = torch.where(advance, self.markers[field.clamp(max=len(self.caps) - 1)], feed)
        finished = just_ended & (field + 1 >= len(self.caps))
        s.update(field=field, flen=flen, done=done | finished, after_null=in_text & (tok == self.null),
                 need_marker=(need_marker & ~advance) | (just_ended & ~finished))
        return feed, recorded, recorded_field, finished


@torch.no_grad()
def generate_fields(
    model: torch.nn.Module,
    prompts: list[list[int]],
    fields: list[FieldSpec],
    *,
    end_id: int,
    pad_id: int,
    null_id: int,
    banned_ids: list[int],
    cfg: SamplingConfig,
    generator: torch.Generator,
    on_batch: Callable[[int], None] | None = None,
    empty_prompt: list[int] | None = None,
) -> list[list[list[int]]]:
    """Token ids per row per field (without markers or the end token).

    `empty_prompt` (the prompt of no conditions) is needed when `cfg.guidance` > 0.
    """
    if cfg.guidance > 0 and empty_prompt is None:
        raise ValueError("classifier-free guidance needs the empty prompt")
    model.eval()
    vocab = model.config.vocab_size
    walker = Walker(fields, end_id, pad_id, null_id, banned_ids, vocab, cfg, generator)
    records: list[tuple[torch.Tensor, ...]] = []
    drive = _continuous if SlotDecoder.supports(model) else _compacting
    drive(model, prompts, fields, walker, cfg, records, on_batch, empty_prompt if cfg.guidance > 0 else None)
    return _collect(records, len(prompts), len(fields))


class _Guidance:
    """Classifier-free guidance of rows' logits by their shadows': each shadow ran after the empty prompt
    on its row's tokens. The decoders run without the ban list (-inf - -inf is nan); it is added to the
    guided logits."""

    def __init__(self, weight: float, bias: torch.Tensor) -> None:
        self.weight, self.bias = weight, bias

    def combine(self, cond: torch.Tensor, uncond: torch.Tensor, steered: torch.Tensor | None = None) -> torch.Tensor:
        """`cond` (rows) guided by `uncond`: all rows, or the `steered` rows (an index) that `uncond` holds."""
        if steered is None:
            cond.mul_(1 + self.weight).sub_(uncond, alpha=self.weight)
        elif len(steered):
            cond[steered] = cond[steered].mul_(1 + self.weight).sub_(uncond, alpha=self.weight)
        return cond.add_(self.bias)

    @staticmethod
    def pair(index: torch.Tensor, b: int) -> torch.Tensor:
        return torch.cat([index, index + b])


class _GuidedSlots:
    """A SlotDecoder of 2b slots seen as b guided slots: slot s + b is slot s's shadow after the empty
    prompt, fed the same tokens while guidance steers the row (`steer`), then left as it is: a row
    costs two rows of decoding in its guided fields and one after them. Same interface as SlotDecoder,
    plus `steer`, so the continuous driver has almost no guided special case."""

    def __init__(self, model: torch.nn.Module, slots: int, max_len: int, empty: list[int], guidance: _Guidance,
                 precision: str = "fp32") -> None:
        self.inner = SlotDecoder(model, 2 * slots, max_len, precision=precision)
        self.b, self.empty, self.guidance = slots, empty, guidance
        self.steered = torch.zeros(slots, dtype=torch.bool)

    @property
    def runs_idle_slots(self) -> bool:
        return self.inner.runs_idle_slots

    def prefill(self, slots: torch.Tensor, prefixes: list[list[int]]) -> None:
        self.inner.prefill(self.guidance.pair(slots, self.b), prefixes + [self.empty] * len(prefixes))
        self.steered[slots] = True  # the first field is guided

    def steer(self, rows: torch.Tensor) -> None:
        """The slots (a mask) whose next token guidance steers; the others' shadows stop."""
        self.steered = rows.clone()

    def keep(self, slots: torch.Tensor) -> None:
        self.inner.keep(self.guidance.pair(slots, self.b))
        self.steered, self.b = self.steered[slots], len(slots)

    def idle(self, done: torch.Tensor) -> None:
        self.inner.idle(done.repeat(2))

    def step(self, tokens: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        steered = self.steered[slots].nonzero().squeeze(1)  # positions in `slots`
        both = self.inner.step(torch.cat([tokens, tokens[steered]]), torch.cat([slots, slots[steered] + self.b]))
        return self.guidance.combine(both[: len(slots)], both[len(slots):], steered)


def _continuous(model, prompts, fields, walker, cfg, records, on_batch, empty) -> None:
    """The GPT: B slots; a slot whose row finished takes the next waiting row before the next step.

    A step runs the slots that hold a row, not the idle ones: with the native kernel, idle slots cost
    nothing while they wait for a refill or, once no row waits, while the last long descriptions finish
    (they were 8 % of the stepped rows at 4,096 dmart rows a worker, and 15 % at 1,024).
    The torch path runs every slot, so once no row waits its batch halves whenever half its slots are idle.
    With guidance, the decoder is a `_GuidedSlots`.
    """
    # by length (a refill pads to its longest prompt), then by content: equal prompts (rows of one product
    # kind and price band) join one refill, whose prefill runs each distinct prompt once
    queue = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), prompts[i]), reverse=True)
    slots = min(cfg.rows_per_step, len(prompts))
    longest = max(map(len, prompts)) + sum(f.max_tokens + 2 for f in fields) + 2
    precision = concrete(cfg.precision)
    if empty is None:
        decoder = SlotDecoder(model, slots, longest, walker.bias, precision)
    else:
        decoder = _GuidedSlots(model, slots, longest, empty, _Guidance(cfg.guidance, walker.bias), precision)
    state = walker.start(slots)
    state["done"][:] = True
    rows = torch.full((slots,), -1, dtype=torch.long)
    feed = torch.full((slots,), walker.pad, dtype=torch.long)
    while True:
        idle = state["done"].nonzero().squeeze(1)
        if queue and len(idle) and (len(idle) >= REFILL_SHARE * slots or bool(state["done"].all())):
            take = idle[: len(queue)]  # refill: prefix into the cache, the first marker joins this step
            new = [queue.pop() for _ in range(len(take))]
            decoder.prefill(take, [prompts[i] for i in new])
            rows[take] = torch.tensor(new)
            feed[take] = fields[0].marker_id
            for key, value in walker.start(len(take)).items():
                state[key][take] = value
        if bool(state["done"].all()):
            break
        active = ~state["done"]
        if decoder.runs_idle_slots and not queue and int(active.sum()) * 2 <= len(active):
            keep = active.nonzero().squeeze(1)  # the torch path's tail: stop computing idle slots
            decoder.keep(keep)
            rows, feed = rows[keep], feed[keep]
            for key in state:
                state[key] = state[key][keep]
            active = ~state["done"]
        decoder.idle(state["done"])
        run = active.nonzero().squeeze(1)
        if empty is not None:
            decoder.steer(walker.steered(state))
        logits = decoder.step(feed[run], run)
        sub = {key: value[run] for key, value in state.items()}
        fed, recorded, recorded_field, finished = walker.advance(sub, logits)
        for key, value in sub.items():
            state[key][run] = value
        feed[run] = torch.where(sub["done"], torch.full_like(fed, walker.pad), fed)
        records.append((rows[run], recorded_field, recorded))
        if on_batch and bool(finished.any()):
            on_batch(int(finished.sum()))


def _compacting(model, prompts, fields, walker, cfg, records, on_batch, empty) -> None:
    """Any causal LM: left-padded batches by prompt length; finished rows leave the batch and its cache.

    With guidance, the batch's second half is its first half's shadows after the empty prompt.
    """
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    for start in range(0, len(order), cfg.rows_per_step):
        rows = torch.tensor(order[start:start + cfg.rows_per_step])
        n = len(rows)
        batch = [prompts[i] + [fields[0].marker_id] for i in rows.tolist()]
        if empty is not None:
            batch += [empty + [fields[0].marker_id]] * len(batch)
        width = max(map(len, batch))
        ids = torch.full((len(batch), width), walker.pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for r, p in enumerate(batch):
            ids[r, width - len(p):] = torch.tensor(p)
            mask[r, width - len(p):] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        if empty is None:
            decoder, guided = HFDecoder(model, walker.bias), None
        else:
            decoder, guided = HFDecoder(model), _Guidance(cfg.guidance, walker.bias)
        logits = decoder(ids, mask, positions)
        state = walker.start(len(rows))
        logits = guided.combine(*logits.chunk(2)) if guided else logits
        next_pos = positions[:, -1] + 1
        while True:
            feed, recorded, recorded_field, _ = walker.advance(state, logits)
            records.append((rows, recorded_field, recorded))
            done = state["done"]
            if bool(done.all()):
                break
            if int(done.sum()) * COMPACT_SHARE >= len(done):
                keep = (~done).nonzero().squeeze(1)
                both = guided.pair(keep, len(rows)) if guided else keep
                decoder.select(both)
                mask, next_pos = mask[both], next_pos[both]
                rows, feed = rows[keep], feed[keep]
                for key in state:
                    state[key] = state[key][keep]
            active = ~state["done"]
            feed = torch.where(active, feed, torch.full_like(feed, walker.pad))
            if guided:
                active, feed = active.repeat(2), feed.repeat(2)
            mask = torch.cat([mask, active.long().unsqueeze(1)], dim=1)
            logits = decoder(feed.unsqueeze(1), mask, next_pos.unsqueeze(1))
            if guided:  # every row keeps its shadow here; past the guided fields it is not used
                steered = walker.steered(state).nonzero().squeeze(1)
                cond, uncond = logits.chunk(2)
                logits = guided.combine(cond, uncond[steered], steered)
            next_pos = next_pos + active.long()
        if on_batch:
            on_batch(n)


def _collect(records: list[tuple[torch.Tensor, ...]], n_rows: int, n_fields: int) -> list[list[list[int]]]:
    """Per-step (row, field, token) records, in step order, regrouped into tokens per row per field."""
    result: list[list[list[int]]] = [[[] for _ in range(n_fields)] for _ in range(n_rows)]
    if not records:
        return result
    row_ids = torch.cat([r for r, _, _ in records])
    field_ids = torch.cat([f for _, f, _ in records])
    tokens = torch.cat([t for _, _, t in records])
    kept = (tokens >= 0) & (row_ids >= 0)
    for r, f, t in zip(row_ids[kept].tolist(), field_ids[kept].tolist(), tokens[kept].tolist()):
        result[r][f].append(t)
    return result
