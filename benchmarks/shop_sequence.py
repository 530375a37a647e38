"""A small GPT over each customer's products, as the purchase model's product picker: measured, not shipped.

Generative sequential recommenders model a customer as a sequence of product tokens. This benchmark trains
shopgen's GPT (shopgen/text/model.py) on the real training customers' sequences (a token per line, a
basket-end token after each basket, baskets in time order) and lets it pick every product of a log whose
customers, baskets, basket sizes and moments are the purchase model's own: the two logs differ only in
which product each line is, so the scores compare the two pickers and nothing else. Same split and scores as
benchmarks/shop.py (fidelity KS against held-out customers, recommenders trained on the log and tested on
held-out real customers, privacy). Writes benchmarks/results/shop_sequence.{json,md}.

    python benchmarks/shop_sequence.py [--shop DIR] [--epochs 8] [--layers 4] [--width 128]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from shopgen.evaluation.shop import fidelity, privacy, recommenders, split_customers
from shopgen.purchases import PurchaseModel, log_roles
from shopgen.rollups import key_strings
from shopgen.shop_inference import infer_shop
from shopgen.sources import read_shop
from shopgen.text.loss import IGNORE
from shopgen.text.model import GPT, GPTConfig

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
WINDOW = 256  # tokens a training row and the sampler's context hold


def sequences(log: pd.DataFrame, roles, index: pd.Index, end: int) -> list[np.ndarray]:
    """Each customer's lines as product tokens, `end` after each basket, baskets in time order."""
    order = [roles.customer, roles.time, roles.basket] if roles.time else [roles.customer, roles.basket]
    log = log.sort_values(order, kind="stable")
    tokens = index.get_indexer(key_strings(log[roles.item]).reindex(log.index))
    out = []
    for _, rows in log.assign(_t=tokens).groupby(roles.customer, sort=False):
        basket = rows[roles.basket].to_numpy()
        last = np.r_[basket[1:] != basket[:-1], True]
        seq = np.empty(len(rows) + int(last.sum()), dtype=np.int64)
        positions = np.arange(len(rows)) + np.r_[0, np.cumsum(last)[:-1]]
        seq[positions] = rows["_t"].to_numpy()
        seq[positions[last] + 1] = end
        out.append(seq)
    return out


def windows(seqs: list[np.ndarray], start: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Training rows: `start` then up to WINDOW-1 tokens of one customer; targets IGNORE past its end."""
    rows = []
    for seq in seqs:
        for a in range(0, len(seq), WINDOW - 1):
            rows.append(np.r_[start, seq[a:a + WINDOW - 1]])
    x = np.full((len(rows), WINDOW), 0, dtype=np.int64)
    y = np.full((len(rows), WINDOW), IGNORE, dtype=np.int64)
    for i, r in enumerate(rows):
        x[i, :len(r)] = r
        y[i, :len(r) - 1] = r[1:]
    return torch.from_numpy(x), torch.from_numpy(y)


def train(seqs: list[np.ndarray], vocab: int, start: int, args) -> tuple[GPT, dict]:
    torch.manual_seed(args.seed)
    model = GPT(GPTConfig(vocab_size=vocab, block_size=WINDOW, n_layer=args.layers, n_head=4, n_embd=args.width))
    x, y = windows(seqs, start)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    steps = args.epochs * int(np.ceil(len(x) / args.batch))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps, pct_start=0.05)
    g = torch.Generator().manual_seed(args.seed)
    losses, t0 = [], time.perf_counter()
    model.train()
    for _ in range(args.epochs):
        perm = torch.randperm(len(x), generator=g)
        total = 0.0
        for b in range(0, len(x), args.batch):
            i = perm[b:b + args.batch]
            loss = model(x[i], y[i])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(i)
        losses.append(round(total / len(x), 3))
    model.eval()
    return model, {"rows": len(x), "epochs": args.epochs, "train_s": round(time.perf_counter() - t0, 1), "loss": losses,
                   "parameters": sum(p.numel() for p in model.parameters())}


@torch.no_grad()
def pick(model: GPT, plan: pd.DataFrame, roles, items: np.ndarray, start: int, end: int, seed: int,
         batch: int = 256) -> np.ndarray:
    """A product for every line of `plan` (the purchase model's log): customers batched by length, the basket
    ends forced where the plan has them, sampled at temperature 1 over the products only."""
    warnings.filterwarnings("ignore", message=".*past_key_values.*", category=FutureWarning)
    hf = model.to_hf().eval()
    gen = torch.Generator().manual_seed(seed)
    order = [roles.customer, roles.time, roles.basket] if roles.time else [roles.customer, roles.basket]
    plan = plan.sort_values(order, kind="stable")
    out = pd.Series(np.zeros(len(plan), dtype=np.int64), index=plan.index)
    customers = []
    for _, rows in plan.groupby(roles.customer, sort=False):
        b = rows[roles.basket].to_numpy()
        customers.append((rows.index.to_numpy(), np.r_[b[1:] != b[:-1], True]))
    customers.sort(key=lambda c: len(c[0]))
    n_items = len(items)
    for c0 in range(0, len(customers), batch):
        group = customers[c0:c0 + batch]
        # each customer's token plan: -1 where a product is drawn, `end` where a basket closes
        plans = [np.insert(np.full(len(ix), -1), np.flatnonzero(last) + 1, end) for ix, last in group]
        length = max(len(p) for p in plans)
        drawn = [[] for _ in group]
        context = torch.full((len(group), 1), start, dtype=torch.long)
        past, used = None, 1
        for step in range(length):
            if used >= WINDOW:  # slide: the last half of the context, encoded again from position 0
                context = context[:, -WINDOW // 2:]
                past, used = None, context.shape[1]
                logits = hf(context, use_cache=True)
            else:
                logits = hf(context if past is None else context[:, -1:], past_key_values=past, use_cache=True)
            past = logits.past_key_values
            scores = logits.logits[:, -1, :n_items].float()
            choice = torch.multinomial(torch.softmax(scores, dim=-1), 1, generator=gen).squeeze(1)
            nxt = torch.empty(len(group), dtype=torch.long)
            for r, p in enumerate(plans):
                if step >= len(p) or p[step] == end:
                    nxt[r] = end
                else:
                    nxt[r] = choice[r]
                    drawn[r].append(int(choice[r]))
            context = torch.cat([context, nxt[:, None]], dim=1)
            used += 1
        for (ix, _), got in zip(group, drawn):
            out.loc[ix] = got
    return items[out.reindex(plan.index).to_numpy()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shop", type=Path, default=ROOT.parent / "shared" / "data" / "online_retail")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(2)
    frames = read_shop(args.shop)
    shop = infer_shop(frames, name=args.shop.name).schema
    roles = log_roles(shop, frames)
    items = frames[roles.items][shop.table(roles.items).primary_key].to_numpy()
    index = pd.Index(key_strings(pd.Series(items)).to_numpy())
    split = split_customers(frames[roles.table], roles, seed=args.seed)
    end, start = len(items), len(items) + 1
    seqs = sequences(split.train, roles, index, end)
    model, stats = train(seqs, len(items) + 2, start, args)
    purchase = PurchaseModel().fit({**frames, roles.table: split.train}, shop)
    n = split.train[roles.customer].nunique()
    plan = purchase.sample(n, seed=args.seed)
    t0 = time.perf_counter()
    picked = plan.assign(**{roles.item: pick(model, plan, roles, items, start, end, args.seed)})
    stats["sample_s"] = round(time.perf_counter() - t0, 1)
    out = {"shop": args.shop.name, "customers": int(n), "lines": len(plan), "gpt": stats}
    for name, log in (("purchase_model", plan), ("gpt_picker", picked), ("real_train", split.train)):
        out[name] = {"fidelity": fidelity(log, split.held_out, roles, items),
                     "recommenders": recommenders(log, split, roles, items, seed=args.seed),
                     "privacy": privacy(log, split, roles) if name != "real_train" else None}
    print(json.dumps(out, indent=2))
    (RESULTS / "shop_sequence.json").write_text(json.dumps(out, indent=2))
    (RESULTS / "shop_sequence.md").write_text(render(out))


def render(out: dict) -> str:
    g = out["gpt"]
    rows = ("purchase_model", "gpt_picker", "real_train")
    lines = [f"# A GPT over customers' product sequences as the product picker ({out['shop']})", "",
             f"GPT of {g['parameters']:,} parameters trained {g['epochs']} epochs on {g['rows']:,} windows of the real "
             f"training customers' sequences in {g['train_s']} s (loss per epoch {g['loss']}); it picked the products of "
             f"{out['lines']:,} lines of {out['customers']:,} customers in {g['sample_s']} s. Both synthetic logs have the "
             "purchase model's customers, baskets, sizes and moments; only the products differ.", "",
             "| measure | purchase model | GPT picker | real training customers |", "|---|---|---|---|"]
    for key in ("ks_product_popularity", "gini", "repeat_share"):
        lines.append(f"| {key} | " + " | ".join(f"{out[r]['fidelity'][key]:.3f}" for r in rows) + " |")
    for model in out["real_train"]["recommenders"]:
        for metric in ("recall@20", "ndcg@20"):
            lines.append(f"| {model} {metric} | " + " | ".join(
                f"{out[r]['recommenders'][model][metric]:.4f}" for r in rows) + " |")
    for key in ("customer_set_copies_synthetic", "basket_copies_synthetic"):
        lines.append(f"| {key.replace('_synthetic', '')} | " + " | ".join(
            f"{out[r]['privacy'][key]:.4f}" for r in rows[:2]) + f" | {out['purchase_model']['privacy'][key.replace('synthetic', 'held_out')]:.4f} (held-out) |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
