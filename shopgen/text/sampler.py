"""Batched, seeded generation of several text fields per row with one KV cache (see decoder.py).

Each row walks through its fields: the field's marker is fed (forced), tokens are sampled until the end
token or the field's token cap, then the next marker. Rows stop independently; a finished row is fed
padding that attention ignores. Sampling is top-k, then top-p inside it, then `argmax(p / Exp(1))`
(an exact categorical draw that avoids a sort over the whole vocabulary; see MEASURED.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from shopgen.text.decoder import decoder_for

COMPACT_SHARE = 4  # compact once a quarter of the batch has finished


@dataclass(frozen=True)
class FieldSpec:
    marker_id: int
    max_tokens: int
    nullable: bool


@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 1.0
    top_p: float = 0.95
    top_k: int = 256
    batch_size: int = 64


def _draw(logits: torch.Tensor, cfg: SamplingConfig, gen: torch.Generator) -> torch.Tensor:
    logits = logits / max(cfg.temperature, 1e-5)
    k = min(cfg.top_k, logits.shape[-1])
    values, index = logits.topk(k, dim=-1)
    probs = torch.softmax(values, dim=-1)
    if cfg.top_p < 1.0:
        outside = probs.cumsum(-1) - probs > cfg.top_p
        probs = probs.masked_fill(outside, 0.0)
    race = torch.empty_like(probs).exponential_(generator=gen)
    return index.gather(-1, (probs / race).argmax(-1, keepdim=True)).squeeze(-1)


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
) -> list[list[list[int]]]:
    """Token ids per row per field (without markers or the end token)."""
    model.eval()
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    results: list[list[list[int]]] = [[] for _ in prompts]
    vocab = model.get_output_embeddings().weight.shape[0]
    bias = torch.zeros(vocab)
    bias[banned_ids] = float("-inf")
    caps = torch.tensor([f.max_tokens for f in fields])
    null_ok = torch.tensor([f.nullable for f in fields])
    markers = torch.tensor([f.marker_id for f in fields])
    for start in range(0, len(order), cfg.batch_size):
        rows = order[start:start + cfg.batch_size]
        tokens = _generate_batch(
            model, [prompts[i] + [fields[0].marker_id] for i in rows], caps, null_ok, markers,
            end_id, pad_id, null_id, bias, cfg, generator,
        )
        for i, per_field in zip(rows, tokens):
            results[i] = per_field
        if on_batch:
            on_batch(len(rows))
    return results


def _generate_batch(
    model: torch.nn.Module, prompts: list[list[int]], caps: torch.Tensor, null_ok: torch.Tensor,
    markers: torch.Tensor, end_id: int, pad_id: int, null_id: int, bias: torch.Tensor,
    cfg: SamplingConfig, gen: torch.Generator,
) -> list[list[list[int]]]:
    b, width = len(prompts), max(len(p) for p in prompts)
    n_fields = len(caps)
    ids = torch.full((b, width), pad_id, dtype=torch.long)
    mask = torch.zeros((b, width), dtype=torch.long)
    for r, p in enumerate(prompts):  # left padding keeps every row's last prompt token at the end
        ids[r, width - len(p):] = torch.tensor(p)
        mask[r, width - len(p):] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    decoder = decoder_for(model, b, width + int(caps.sum()) + 2 * n_fields + 2)
    logits = decoder(ids, mask, positions)
    next_pos = positions[:, -1] + 1

    field = torch.zeros(b, dtype=torch.long)
    flen = torch.zeros(b, dtype=torch.long)
    need_marker = torch.zeros(b, dtype=torch.bool)
    done = torch.zeros(b, dtype=torch.bool)
    rows = torch.arange(b)  # original row of each batch slot; finished rows are compacted away
    record: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    while True:
        step_logits = logits.float() + bias
        first = flen == 0
        step_logits[:, end_id] = step_logits[:, end_id].masked_fill(first, float("-inf"))
        step_logits[:, null_id] = step_logits[:, null_id].masked_fill(~(first & null_ok[field]), float("-inf"))
        sampled = _draw(step_logits, cfg, gen)
        ended_by_cap = flen + 1 >= caps[field]
        tok = torch.where(ended_by_cap, torch.full_like(sampled, end_id), sampled)
        in_text = ~done & ~need_marker
        record.append((rows, field.clone(), torch.where(in_text & (tok != end_id), tok, torch.full_like(tok, -1))))
        just_ended = in_text & (tok == end_id)
        after_null = in_text & (tok == null_id)
        flen = torch.where(in_text, flen + 1, flen)

        feed = torch.where(in_text, tok, torch.full_like(tok, pad_id))
        # Rows that were waiting for their next field's marker get it now.
        advance = need_marker & ~done
        field = torch.where(advance, field + 1, field)
        flen = torch.where(advance, torch.zeros_like(flen), flen)
        feed = torch.where(advance, markers[field.clamp(max=n_fields - 1)], feed)
        need_marker = need_marker & ~advance
        finished_row = just_ended & (field + 1 >= n_fields)
        need_marker = need_marker | (just_ended & ~finished_row)
        done = done | finished_row
        if bool(done.all()):
            break
        if int(done.sum()) * COMPACT_SHARE >= len(done):  # drop finished rows from the batch and its cache
            keep = (~done).nonzero().squeeze(1)
            decoder.select(keep)
            rows, field, flen, need_marker, done = rows[keep], field[keep], flen[keep], need_marker[keep], done[keep]
            mask, next_pos, feed, after_null = mask[keep], next_pos[keep], feed[keep], after_null[keep]
        active = ~done
        feed = torch.where(active, feed, torch.full_like(feed, pad_id))
        mask = torch.cat([mask, active.long().unsqueeze(1)], dim=1)
        logits = decoder(feed.unsqueeze(1), mask, next_pos.unsqueeze(1))
        next_pos = next_pos + active.long()
        if bool(after_null.any()):  # a null value is one token: force the end right after it
            logits = logits.clone()
            logits[after_null] = float("-inf")
            logits[after_null, end_id] = 0.0
    return _collect(record, b, n_fields)


def _collect(record: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], b: int, n_fields: int) -> list[list[list[int]]]:
    """Per-step (row, field, token) records, in step order, regrouped into tokens per row per field."""
    row_ids = torch.cat([r for r, _, _ in record])
    field_ids = torch.cat([f for _, f, _ in record])
    tokens = torch.cat([t for _, _, t in record])
    kept = tokens >= 0
    result: list[list[list[int]]] = [[[] for _ in range(n_fields)] for _ in range(b)]
    for r, f, t in zip(row_ids[kept].tolist(), field_ids[kept].tolist(), tokens[kept].tolist()):
        result[r][f].append(t)
    return result
