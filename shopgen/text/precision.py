"""Which float type the text GPT trains and samples in: bf16 where this CPU runs it faster, else fp32.

CPUs with native bf16 matmuls (AVX512_BF16, AMX) run the matmuls 2-7x faster under bf16 autocast (a
`small` training step 1.6x in isolation, a whole dmart training 1.19x: short rows spend more on casts);
CPUs without them (AVX2) emulate bf16 and train ~10x slower. Instruction flags are a poor proxy (oneDNN's
kernels, the VM's CPUID), so "auto" decides by a timing. fp32 stays the default: on dmart `small`, bf16's
extra epochs lowered validation loss but category consistency fell from 0.83 to 0.70 (README, Presets).
Sampling defaults to "auto" (sampler.SamplingConfig): there bf16 rounds the same model's logits, and the
scores did not move. Sampling also takes "int8" (decoder.py), never chosen by "auto": torch deprecates the
quantized tensors its int8 kernels take.
"""

from __future__ import annotations

import functools
import os
import time

import torch

from shopgen.errors import ShopgenError

PRECISIONS = ("auto", "fp32", "bf16")  # training's
SAMPLING_PRECISIONS = (*PRECISIONS, "int8")  # the sampler's weight matmuls: int8 weights, activations per call
BF16_MIN_SPEEDUP = 1.25  # below this, bf16's rounding is not worth its speed
_PROBE_SHAPE = (1024, 256, 1024)  # (tokens, width, 4 x width): a training matmul of the `small` preset


def check(precision: str, what: str = "precision", choices: tuple[str, ...] = PRECISIONS) -> str:
    """`precision` if it is one of `choices`; else one line naming `what` (the option) and the choices."""
    if precision not in choices:
        raise ShopgenError(f"{what} {precision!r} is unknown; use one of {', '.join(choices)}")
    return precision


def resolve(precision: str, choices: tuple[str, ...] = PRECISIONS) -> str:
    """`precision` as one of `choices` other than "auto"; "auto" (or $SHOPGEN_PRECISION, when set) decides
    between fp32 and bf16 by `bf16_speedup`."""
    if precision == "auto":
        precision = check(os.environ.get("SHOPGEN_PRECISION", "auto"), "SHOPGEN_PRECISION", choices)
    check(precision, choices=choices)
    if precision == "auto":
        return "bf16" if bf16_speedup() >= BF16_MIN_SPEEDUP else "fp32"
    return precision


@functools.cache
def bf16_speedup() -> float:
    """fp32 time over bf16 time of one training-sized matmul on this machine (measured once a process)."""
    m, k, n = _PROBE_SHAPE
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(m, k, generator=generator), torch.randn(k, n, generator=generator)
    return _seconds(a, b) / _seconds(a.bfloat16(), b.bfloat16())


def _seconds(a: torch.Tensor, b: torch.Tensor, reps: int = 8, budget: float = 0.05) -> float:
    """Best of a few timings of `a @ b`, after a warm-up call (oneDNN builds its kernel on the first); past
    `budget` seconds, two timings do (emulated bf16, ~10x slower than fp32, need no more to lose)."""
    a @ b
    best, spent = float("inf"), 0.0
    for rep in range(reps):
        start = time.perf_counter()
        a @ b
        took = time.perf_counter() - start
        best, spent = min(best, took), spent + took
        if rep >= 1 and spent > budget:
            break
    return best
