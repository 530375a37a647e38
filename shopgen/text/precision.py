"""Which float type the text GPT trains and samples in: bf16 where this CPU runs it faster, else fp32.

CPUs with native bf16 matmuls (AVX512_BF16, AMX) run the matmuls 2-7x faster under bf16 autocast (a
`small` training step 1.6x in isolation, a whole dmart training 1.19x: short rows spend more on casts);
CPUs without them (AVX2) emulate bf16 and train ~10x slower. Instruction flags are a poor proxy (oneDNN's
kernels, the VM's CPUID), so "auto" decides by a timing, taken once a machine and kept (machine.py): a
seeded sample must not change with the load a fresh timing would see. fp32 stays the default: on dmart `small`, bf16's
extra epochs lowered validation loss but category consistency fell from 0.83 to 0.70 (README, Presets).
Sampling defaults to "auto" (sampler.SamplingConfig): there bf16 rounds the same model's logits, and the
scores did not move. Sampling also takes "int8" (decoder.py), never chosen by "auto": torch deprecates the
quantized tensors its int8 kernels take.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import time

import torch

from shopgen.errors import ShopgenError
from shopgen.text import machine

PRECISIONS = ("auto", "fp32", "bf16")  # training's
SAMPLING_PRECISIONS = (*PRECISIONS, "int8")  # the sampler's weight matmuls: int8 weights, activations per call
BF16_MIN_SPEEDUP = 1.25  # below this, bf16's rounding is not worth its speed
_PROBE_SHAPE = (1024, 256, 1024)  # (tokens, width, 4 x width): a training matmul of the `small` preset
log = logging.getLogger(__name__)


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
    """fp32 time over bf16 time of one training-sized matmul on this machine.

    Measured once a machine and kept in the machine cache, keyed by the CPU and torch's version: "auto"
    then picks the same type in every process, so one seed gives one catalog whatever else the machine
    runs (two fits side by side on 2 cores, each timing afresh, wrote different catalogs). Delete the file,
    or set SHOPGEN_PRECISION, to decide again."""
    key = hashlib.sha256("\0".join([machine.cpu(), torch.__version__, repr(_PROBE_SHAPE)]).encode()).hexdigest()
    path = machine.cache_root() / f"precision-{key[:16]}.json"
    try:
        return float(json.loads(path.read_text())["bf16_speedup"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    speedup = _measure()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"bf16_speedup": speedup, "torch": torch.__version__, "probe": _PROBE_SHAPE}))
        os.replace(tmp, path)  # atomic: a process timing beside this one reads the old file or the new
    except OSError as exc:
        log.info("bf16 timing not kept (%s): each process will time again", exc)
    return speedup


def _measure(reps: int = 16, budget: float = 0.1) -> float:
    """Best-of timings of `a @ b` in fp32 and in bf16, taken in turns so that both see the same load, after
    a warm-up call each (oneDNN builds its kernel on the first); past `budget` seconds, two rounds do
    (emulated bf16, ~10x slower than fp32, needs no more to lose)."""
    m, k, n = _PROBE_SHAPE
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(m, k, generator=generator), torch.randn(k, n, generator=generator)
    pairs = ((a, b), (a.bfloat16(), b.bfloat16()))
    for x, y in pairs:
        x @ y
    best, spent = [float("inf")] * 2, 0.0
    for rep in range(reps):
        for j, (x, y) in enumerate(pairs):
            start = time.perf_counter()
            x @ y
            took = time.perf_counter() - start
            best[j], spent = min(best[j], took), spent + took
        if rep >= 1 and spent > budget:
            break
    return best[0] / best[1]
