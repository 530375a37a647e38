"""A projection `x @ weight + bias` in the number type a machine multiplies fastest: fp32, bf16 or int8.

The GPT's decoding step runs its weight matmuls through `project` on weights `prepare`d once per sampling
call: bf16 copies pay where the CPU multiplies bf16 natively; int8 weights (one scale per output channel)
for torch's dynamic quantized linear pay where bf16 is emulated, at ~2 % relative error in a projection's
output. Which one a machine runs faster is measured, not assumed (precision.py).
"""

from __future__ import annotations

import warnings

import torch


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
