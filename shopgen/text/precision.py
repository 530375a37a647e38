"""Which number type the text GPT trains and samples in: a narrower one where this CPU runs it faster.

CPUs with native bf16 matmul instructions run the matmuls several times faster under bf16 autocast (a
whole training gains less: short rows spend more on casts); CPUs without them emulate bf16 and train
many times slower. Instruction flags are a poor proxy (oneDNN's
kernels, the VM's CPUID), so "auto" decides by timings, taken once a machine and kept (machine.py): a
seeded sample must not change with the load a fresh timing would see. Training's "auto" chooses between
fp32 and bf16; fp32 stays its default: on dmart `small`, bf16's extra epochs lowered validation loss but
category consistency fell from 0.83 to 0.70 (docs/text-model.md).
Sampling defaults to "auto" (the text model's own config): the faster of bf16 and int8 (linear.py) on a
decoding step's projection, where it beats fp32, else fp32. Both round the same model's logits, and over
several seeds the text scores did not move (docs/text-model.md; benchmarks/results/text_generation*.md).
torch deprecates the quantized tensors its int8 kernels take: where they are gone, the timing fails and
"auto" does not pick int8.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import time
import warnings
from collections.abc import Callable

import torch

from shopgen.errors import ShopgenError
from shopgen.text import TRAINING_PRECISIONS, machine

PRECISIONS = TRAINING_PRECISIONS
MIN_SPEEDUP = 1.25  # below this, a narrower type's rounding is not worth its speed
_PROBE_SHAPE = (1024, 256, 1024)  # (tokens, width, 4 x width): a training matmul of the `small` preset
_SAMPLE_SHAPE = (256, 256, 1024)  # a sampling step's MLP matmul of the `small` preset, 256 rows
SPEEDUPS = ("train_bf16", "sample_bf16", "sample_int8")
log = logging.getLogger(__name__)


def check(precision: str, what: str = "precision", choices: tuple[str, ...] = PRECISIONS) -> str:
    """`precision` if it is one of `choices`; else one line naming `what` (the option) and the choices."""
    if precision not in choices:
        raise ShopgenError(f"{what} {precision!r} is unknown; use one of {', '.join(choices)}")
    return precision


def resolve(precision: str, choices: tuple[str, ...] = PRECISIONS) -> str:
    """`precision` as one of `choices` other than "auto"; "auto" (or $SHOPGEN_PRECISION, when set) decides by
    `speedups`: training (`choices` without int8) takes bf16 where its matmul runs MIN_SPEEDUP times fp32's;
    the sampler takes the faster of bf16 and int8 where it does, else fp32."""
    if precision == "auto":
        precision = check(os.environ.get("SHOPGEN_PRECISION", "auto"), "SHOPGEN_PRECISION", choices)
    check(precision, choices=choices)
    if precision == "auto":
        speed = speedups()
        if "int8" not in choices:
            return "bf16" if speed["train_bf16"] >= MIN_SPEEDUP else "fp32"
        best = max(("bf16", "int8"), key=lambda p: speed[f"sample_{p}"])
        return best if speed[f"sample_{best}"] >= MIN_SPEEDUP else "fp32"
    return precision


@functools.cache
def speedups() -> dict[str, float]:
    """fp32's time over bf16's for a training matmul (`train_bf16`), and over bf16's and int8's for the
    sampler's own projection of a decoding step (`sample_bf16`, `sample_int8`; linear.py, casts and
    quantization of the input included).

    Measured once a machine and kept in the machine cache, keyed by the CPU, its instruction caps
    (machine.isa_limits) and torch's version: "auto"
    then picks the same type in every process, so one seed gives one catalog whatever else the machine
    runs (two fits side by side on 2 cores, each timing afresh, wrote different catalogs). Delete the file,
    or set SHOPGEN_PRECISION, to decide again."""
    key = "\0".join([machine.cpu(), machine.isa_limits(), torch.__version__, repr(_PROBE_SHAPE), repr(_SAMPLE_SHAPE)])
    path = machine.cache_root() / f"precision-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"
    with machine.locked(path.with_suffix(".lock")):  # processes starting together time once, not each
        try:
            kept = json.loads(path.read_text())
            return {name: float(kept[name]) for name in SPEEDUPS}
        except (OSError, ValueError, KeyError, TypeError):
            pass
        measured = _timed()
        try:
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({**measured, "torch": torch.__version__}))
            os.replace(tmp, path)  # atomic: no reader sees half a file
        except OSError as exc:
            log.info("precision timings not kept (%s): each process will time again", exc)
        return measured


def _timed() -> dict[str, float]:
    m, k, n = _PROBE_SHAPE
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(m, k, generator=generator), torch.randn(k, n, generator=generator)
    a16, b16 = a.bfloat16(), b.bfloat16()
    return {"train_bf16": _measure(lambda: a @ b, lambda: a16 @ b16),
            "sample_bf16": _sampling_speedup("bf16"), "sample_int8": _sampling_speedup("int8")}


def _sampling_speedup(precision: str) -> float:
    """The sampler's fp32 and `precision` projections (linear.py), timed in turns on one thread, as each of
    its worker processes runs; 0 where `precision` fails here."""
    from shopgen.text.linear import prepare, project

    m, k, n = _SAMPLE_SHAPE
    generator = torch.Generator().manual_seed(0)
    x, w, b = torch.randn(m, k, generator=generator), torch.randn(k, n, generator=generator), torch.zeros(n)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():  # torch 2.13 deprecates the quantized tensors int8 takes
            warnings.simplefilter("ignore")
            fp32, other = prepare(w, b, "fp32"), prepare(w, b, precision)
            return _measure(lambda: project(x, fp32), lambda: project(x, other))
    except (RuntimeError, AttributeError, NotImplementedError) as exc:
        log.info("%s matmuls unavailable here (%s): 'auto' does not sample in them", precision, exc)
        return 0.0
    finally:
        torch.set_num_threads(threads)


def _measure(fp32: Callable[[], object], other: Callable[[], object], reps: int = 16, budget: float = 0.1) -> float:
    """fp32's best time over `other`'s, timed in turns so that both see the same load, after a warm-up call
    each (oneDNN builds its kernel on the first); past `budget` seconds, two rounds do (emulated bf16, ~10x
    slower than fp32, needs no more to lose)."""
    calls = (fp32, other)
    for call in calls:
        call()
    best, spent = [float("inf")] * 2, 0.0
    for rep in range(reps):
        for j, call in enumerate(calls):
            start = time.perf_counter()
            call()
            took = time.perf_counter() - start
            best[j], spent = min(best[j], took), spent + took
        if rep >= 1 and spent > budget:
            break
    return best[0] / best[1]
