"""The training loss's last layer: projection onto the vocabulary and cross-entropy in one autograd step.

Unfused, a `small` step (~1,300 labelled tokens, 8,192 tokens of vocabulary) makes the logits (43 MB)
and then passes over tensors of that size six times: log-softmax and its output, the NLL's zero-filled
gradient, the log-softmax backward; in the torch profiler those passes cost more than attention. Here
each block of rows keeps its logits, their log-sum-exp and nothing else; the backward turns them into
the softmax's gradient in place, a block at a time while it is in cache, so what remains of the loss's
time is the three matmuls.
"""

from __future__ import annotations

import torch

IGNORE = -100  # the label of a position nothing is learnt at (prompts, padding), as in torch's cross-entropy
BLOCK_ROWS = 512  # rows of logits a block: 16 MB at 8,192 tokens; 512 timed best of 64-1,340 (115.7 against 121.8 ms)


class _HeadCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        # under autocast the matmuls run in its type, as the unfused head did; the softmax stays fp32
        dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else hidden.dtype
        w = weight.to(dtype)
        blocks, total = [], hidden.new_zeros((), dtype=torch.float32)
        with torch.autocast("cpu", enabled=False):
            for start in range(0, len(hidden), BLOCK_ROWS):
                rows = slice(start, start + BLOCK_ROWS)
                logits = (hidden[rows].to(dtype) @ w.T).float()
                lse = torch.logsumexp(logits, 1)
                picked = logits.gather(1, targets[rows, None]).squeeze(1)
                total += ((lse - picked) * scale[rows]).sum()
                blocks.append((logits, lse))
        ctx.save_for_backward(hidden, weight, targets, scale)
        ctx.blocks, ctx.dtype = blocks, dtype
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None, None]:
        hidden, weight, targets, scale = ctx.saved_tensors
        w, h = weight.to(ctx.dtype), hidden.to(ctx.dtype)
        grad_hidden = torch.empty_like(hidden)
        grad_weight = torch.zeros(weight.shape, dtype=ctx.dtype)
        for i, (logits, lse) in enumerate(ctx.blocks):
            rows = slice(i * BLOCK_ROWS, (i + 1) * BLOCK_ROWS)
            probs = logits.sub_(lse[:, None]).exp_()  # the block's softmax, in the logits' memory
            probs[torch.arange(len(probs)), targets[rows]] -= 1.0
            g = probs.mul_((scale[rows] * grad)[:, None]).to(ctx.dtype)
            grad_hidden[rows] = g @ w
            grad_weight.addmm_(g.T, h[rows])
        ctx.blocks = None
        return grad_hidden, grad_weight.to(weight.dtype), None, None


def head_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                       weights: torch.Tensor | None = None) -> torch.Tensor:
    """`F.cross_entropy(hidden @ weight.T, targets)`, the mean over rows, or their `weights`-weighted mean,
    without the full logits' passes. `hidden` (rows, width), `weight` (vocabulary, width)."""
    scale = torch.full((len(hidden),), 1.0 / max(len(hidden), 1)) if weights is None else weights / weights.sum()
    return _HeadCrossEntropy.apply(hidden, weight, targets, scale.float())
