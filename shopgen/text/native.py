"""The decode-attention kernel (decode_attention.c): compiled on this machine at first use, cached, optional.

Why native code: in the torch path a decoding step's attention is a handful of ops per group of slots and
layer (scores, mask, softmax, two bmm, concatenation), each reading a padded span of the cache; at batch
128 on dmart they cost as much as all the weight matmuls together. The kernel is one call per layer that
writes the new key and value and reads each slot's own history once.

It is built with the machine's C compiler (`cc -O3 -march=native -fopenmp`, 0.2 s on a project machine) into
$SHOPGEN_CACHE_DIR, else $XDG_CACHE_HOME/shopgen, else ~/.cache/shopgen, under a name keyed by the source,
the flags and the CPU. Nothing is downloaded. Without a compiler, or with SHOPGEN_NATIVE=0, `kernel()` is
None and the decoder keeps its torch path (same results to float rounding).
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("decode_attention.c")
FLAG_SETS = (  # the first that builds wins: not every compiler knows -march=native or has OpenMP (Apple clang)
    ["-O3", "-march=native", "-fopenmp", "-fPIC", "-shared", "-std=gnu11"],
    ["-O3", "-fopenmp", "-fPIC", "-shared", "-std=gnu11"],
    ["-O3", "-fPIC", "-shared", "-std=gnu11"],  # one thread, still one call per layer
)
log = logging.getLogger(__name__)
_POINTERS = [ctypes.c_void_p] * 5
_SIZES = [ctypes.c_int64] * 4


def cache_dir() -> Path:
    base = os.environ.get("SHOPGEN_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "shopgen"
    return Path(base) / "native"


def _cpu() -> str:
    """What -march=native compiles for: a cache shared between machines must not mix their builds."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return "|".join(next((x for x in lines if x.startswith(k)), "") for k in ("model name", "flags"))
    except OSError:
        return platform.processor() or platform.machine()


def _build(compiler: str, flags: list[str], target: Path) -> bool:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        built = Path(tmp) / target.name
        done = subprocess.run([compiler, *flags, str(SOURCE), "-o", str(built), "-lm"], capture_output=True, text=True)
        if done.returncode != 0:
            log.info("native decode attention did not compile with %s: %s", flags, done.stderr.strip()[:400])
            return False
        os.replace(built, target)  # atomic: a process compiling beside this one sees the old file or the new
    return True


@cache
def kernel() -> Callable[..., int] | None:
    """The compiled `shopgen_decode_attention` function, or None where it cannot be built here."""
    if os.environ.get("SHOPGEN_NATIVE", "1") == "0":
        return None
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        log.info("no C compiler found: the text sampler attends through torch ops")
        return None
    source = SOURCE.read_bytes()
    for flags in FLAG_SETS:
        key = hashlib.sha256(b"\0".join([source, " ".join(flags).encode(), _cpu().encode(), compiler.encode()]))
        target = cache_dir() / f"decode_attention-{key.hexdigest()[:16]}.so"
        try:
            if not target.exists() and not _build(compiler, flags, target):
                continue
            fn = ctypes.CDLL(str(target)).shopgen_decode_attention  # torch's OpenMP runtime is loaded first
        except (OSError, AttributeError) as exc:
            log.info("native decode attention unavailable (%s)", exc)
            continue
        fn.argtypes = [*_POINTERS, *_SIZES, ctypes.c_float, ctypes.c_int]
        fn.restype = ctypes.c_int64
        return fn
    return None


def decode_attention(fn: Callable[..., int], qkv: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                     pos: torch.Tensor, scale: float) -> torch.Tensor:
    """Write each slot's new key and value at `pos` into the layer cache `k`, `v` (slots, heads, span,
    head_dim) and return its attention output, (slots, heads * head_dim). All float32 and contiguous."""
    slots, heads, span, dim = k.shape
    if not (qkv.is_contiguous() and k.is_contiguous() and v.is_contiguous() and pos.is_contiguous()
            and qkv.dtype == k.dtype == v.dtype == torch.float32 and pos.dtype == torch.int64
            and qkv.shape == (slots, 3 * heads * dim) and pos.shape == (slots,)):
        raise ValueError("decode_attention needs contiguous float32 qkv (slots, 3*d), caches and int64 positions")
    out = torch.empty(slots, heads * dim)
    if fn(qkv.data_ptr(), k.data_ptr(), v.data_ptr(), pos.data_ptr(), out.data_ptr(),
          slots, heads, dim, span, scale, torch.get_num_threads()):
        raise IndexError(f"a slot's cache is full ({span} cells): size the decoder for the longest row")
    return out
