"""Training loop for the text GPT: length-grouped batches, a weighted loss on text tokens only, a time budget.

The step budget is planned from the measured speed of the first steps, so the cosine schedule ends
when the time budget does; a validation split stops training early and keeps the best weights.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from shopgen.progress import progress_bar
from shopgen.text.loss import IGNORE
from shopgen.text.model import GPT

WARMUP_STEPS = 50
CALIBRATION_STEPS = (6, 40)  # plan early, then again once the first slow steps no longer dominate
REPLAN_STEPS = 100  # and again every 100 steps from the recent speed
PATIENCE = 2


@dataclass
class TrainStats:
    steps: int = 0
    epochs: float = 0.0
    tokens: int = 0  # trained, prompts included
    seconds: float = 0.0
    train_loss: float = float("nan")
    val_loss: float = float("nan")
    tokens_per_second: float = 0.0
    stopped_by: str = ""
    precision: str = "fp32"
    budget_s: float = 0.0  # the time budget it trained under: a kept model says what it was given

    def to_dict(self) -> dict:
        return asdict(self)


def _batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle, then sort within windows of 50 batches, so each batch has similar lengths."""
    order = rng.permutation(len(lengths))
    window = batch_size * 50
    out = []
    for start in range(0, len(order), window):
        chunk = order[start:start + window]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        out.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(out)
    return out


Seq = tuple[list[int], list[int], list[float]]  # input ids, labels (IGNORE on prompts), each label's weight


def with_leads(rows: list[Seq], tails: list[int], repeats: list[int]) -> list[Seq]:
    """`rows`, then `repeats[i]` copies of each row without its last `tails[i]` tokens."""
    leads = [tuple(part[:len(row[0]) - tail] for part in row) for row, tail in zip(rows, tails)]
    return rows + [lead for lead, n in zip(leads, repeats) for _ in range(n)]


def collate(seqs: list[Seq], idx: np.ndarray, pad_id: int) -> tuple[torch.Tensor, ...]:
    width = max(len(seqs[i][0]) for i in idx)
    ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
    labels = torch.full((len(idx), width), IGNORE, dtype=torch.long)
    weights = torch.zeros((len(idx), width))
    mask = torch.zeros((len(idx), width), dtype=torch.long)
    for r, i in enumerate(idx):
        x, y, w = seqs[i]
        ids[r, :len(x)] = torch.tensor(x)
        labels[r, :len(y)] = torch.tensor(y)
        weights[r, :len(w)] = torch.tensor(w)
        mask[r, :len(x)] = 1
    return ids, mask, labels, weights


def batch_loss(model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor,
               weights: torch.Tensor | None = None) -> torch.Tensor:
    """Next-token loss over the labelled positions only: their mean, or their `weights`-weighted mean.

    The GPT projects only the labelled positions onto the vocabulary, fused with the loss (model.py,
    loss.py): on dmart a quarter of the positions are prompts and padding, and the projection is ~40 % of a
    small GPT's matmul work. Any other model (a `--text-base` of another architecture) projects every position.
    """
    targets = labels[:, 1:]
    if isinstance(model, GPT):
        return model(ids[:, :-1], targets, None if weights is None else weights[:, 1:])
    keep = targets != IGNORE
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1][keep].float()
    if weights is None:
        return F.cross_entropy(logits, targets[keep])
    w = weights[:, 1:][keep]
    return (F.cross_entropy(logits, targets[keep], reduction="none") * w).sum() / w.sum()


@torch.no_grad()
def evaluate(model: torch.nn.Module, seqs: list, batch_size: int, pad_id: int) -> float:
    model.eval()
    total, count = 0.0, 0
    lengths = np.array([len(s[0]) for s in seqs])
    for idx in _batches(lengths, batch_size, np.random.default_rng(0)):
        ids, mask, labels, _ = collate(seqs, idx, pad_id)
        n = int((labels[:, 1:] != IGNORE).sum())
        total += float(batch_loss(model, ids, mask, labels)) * n
        count += n
    model.train()
    return total / max(count, 1)


def train_lm(
    model: torch.nn.Module,
    seqs: list[Seq],
    *,
    pad_id: int,
    batch_size: int,
    learning_rate: float,
    max_epochs: int,
    max_seconds: float,
    seed: int,
    show_progress: bool = True,
    alternates: list[Seq] | None = None,
    alternate_share: float = 0.0,
    lead_tails: list[int] | None = None,
    lead_repeats: int | list[int] = 0,
    precision: str = "fp32",
) -> TrainStats:
    """Train in place; returns what happened. The loss weighs each label by its weight in `seqs`; the
    validation loss is the plain mean over text tokens, comparable across weightings.

    Each step, a training row is replaced by its `alternates` entry (the same text after an empty prompt)
    with probability `alternate_share`: the model also learns the text's unconditional distribution,
    which classifier-free guidance contrasts the conditional one with at sampling time.

    Each epoch also holds `lead_repeats` copies (one count for all rows, or one per row) of every
    training row cut `lead_tails` tokens before its end (after its first text field, or a few tokens into
    the next): short sequences that give the name, which says what the product is, and the description's
    opening, where it picks its topic, more passes for little time. An epoch is one
    pass over the rows and their leads.

    `precision` "bf16" runs the forward and backward passes under bf16 autocast (weights, optimizer state
    and the validation loss stay fp32): where the CPU has bf16 matmuls, the budget buys more epochs.
    """
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    order = rng.permutation(len(seqs))
    n_val = min(256, len(seqs) // 20) if len(seqs) >= 200 else 0
    val = [seqs[i] for i in order[:n_val]]
    train = [seqs[i] for i in order[n_val:]]
    train_alt = [alternates[i] for i in order[n_val:]] if alternates and alternate_share > 0 else None
    repeats = [lead_repeats] * len(seqs) if isinstance(lead_repeats, int) else list(lead_repeats)
    if lead_tails and any(repeats):
        tails = [lead_tails[i] for i in order[n_val:]]
        repeats = [repeats[i] for i in order[n_val:]]
        train = with_leads(train, tails, repeats)
        train_alt = with_leads(train_alt, tails, repeats) if train_alt else None
    lengths = np.array([len(s[0]) for s in train])

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(  # fused: one pass over all the weights a step instead of one per tensor
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=learning_rate, betas=(0.9, 0.95), fused=True,
    )
    steps_per_epoch = math.ceil(len(train) / batch_size)
    planned = max(1, max_epochs * steps_per_epoch)
    stats = TrainStats(precision=precision, budget_s=max_seconds)
    best_val, best_state, bad_evals = float("inf"), None, 0
    tokens, ema, mark = 0, None, None
    start = time.perf_counter()
    model.train()
    with progress_bar(show_progress) as bar:
        task = bar.add_task("train text GPT", total=planned, info="")
        step, epoch = 0, 0
        while step < planned and not stats.stopped_by:
            for idx in _batches(lengths, batch_size, rng):
                lr_scale = min(1.0, (step + 1) / WARMUP_STEPS)
                lr_scale *= 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, step / planned)))
                for group in opt.param_groups:
                    group["lr"] = learning_rate * lr_scale
                batch = [train_alt[i] if train_alt and rng.random() < alternate_share else train[i] for i in idx]
                ids, mask, labels, weights = collate(batch, np.arange(len(batch)), pad_id)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                    loss = batch_loss(model, ids, mask, labels, weights)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                step += 1
                tokens += int(mask.sum())
                value = loss.item()
                ema = value if ema is None else 0.95 * ema + 0.05 * value
                elapsed = time.perf_counter() - start
                if step in CALIBRATION_STEPS or (step > CALIBRATION_STEPS[-1] and step % REPLAN_STEPS == 0):
                    # plan the schedule from the speed since the last plan: a machine that got busier or
                    # quieter since the first steps moves the schedule's end, not the budget's
                    rate = (step - mark[0]) / (elapsed - mark[1]) if mark else step / elapsed
                    affordable = step + int((max_seconds - elapsed) * rate)
                    planned = max(step + 1, min(max_epochs * steps_per_epoch, affordable))
                    bar.update(task, total=planned)
                    mark = (step, elapsed)
                bar.update(task, completed=step, info=f"loss {ema:.3f}")
                if elapsed >= max_seconds:
                    stats.stopped_by = "time budget"
                    break
                if step >= planned:
                    break
            epoch += 1
            if val:
                val_loss = evaluate(model, val, batch_size, pad_id)
                if val_loss < best_val - 1e-4:
                    best_val, best_state, bad_evals = val_loss, copy.deepcopy(model.state_dict()), 0
                else:
                    bad_evals += 1
                    if bad_evals >= PATIENCE:
                        stats.stopped_by = stats.stopped_by or "early stopping"
            if epoch >= max_epochs:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    stats.steps, stats.epochs = step, round(step / steps_per_epoch, 2)
    stats.seconds = round(time.perf_counter() - start, 1)
    stats.train_loss = round(ema or float("nan"), 4)
    stats.val_loss = round(best_val, 4) if val else float("nan")
    stats.tokens = tokens
    stats.tokens_per_second = round(tokens / max(stats.seconds, 1e-9))
    stats.stopped_by = stats.stopped_by or "planned steps"
    return stats
