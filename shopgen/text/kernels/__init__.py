"""The sampler's native kernels, compiled on this machine at first use, cached, optional.

- decode_attention.c: in the torch path a decoding step's attention is a handful of ops per group of slots
  and layer (scores, mask, softmax, two bmm, concatenation), each reading a padded span of the cache; at
  batch 128 on dmart they cost as much as all the weight matmuls together. The kernel is one call per
  layer that writes the new key and value and reads each slot's own history once, from an int8 cache
  with a scale per vector (`quantize`).
- draw.c: top-k, top-p and the categorical draw of every row in one pass over its logits, where torch
  takes ~15 calls a step.
- gelu.c: GPT-2's tanh GELU in one vectorised pass, for sampling and for training's forward and backward
  (`gelu_tanh`), where torch's elementwise ops were a measurable share of a `small` step.

All go into one library, built with the machine's C compiler (`cc -O3 -march=native -fopenmp`, 0.2 s on
a project machine) into the machine cache (text/machine.py), under a name keyed by the sources, the flags and
the CPU. Nothing is downloaded. Without a compiler, or with
SHOPGEN_NATIVE=0, `kernel()` is None and the sampler keeps its torch path, with an fp32 cache (the same
attention to the int8 rounding of the kernel's cache; the same distribution for the draw).
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

import torch

from shopgen.text import machine

SOURCES = tuple(Path(__file__).with_name(name) for name in ("decode_attention.c", "draw.c", "gelu.c"))
HEADERS = (Path(__file__).with_name("fastmath.h"),)  # part of the build's key, not of its command
FLAG_SETS = (  # the first that builds wins: not every compiler knows -march=native or has OpenMP (Apple clang)
    ["-O3", "-march=native", "-fopenmp", "-fPIC", "-shared", "-std=gnu11"],
    ["-O3", "-fopenmp", "-fPIC", "-shared", "-std=gnu11"],
    ["-O3", "-fPIC", "-shared", "-std=gnu11"],  # one thread, still one call per layer
)
log = logging.getLogger(__name__)
CACHE_DTYPE = torch.int8  # what decode_attention.c keeps keys and values in, each vector with a float scale


def cache_dir() -> Path:
    return machine.cache_root() / "native"


def build(compiler: str, flags: list[str], target: Path) -> bool:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        built = Path(tmp) / target.name
        done = subprocess.run([compiler, *flags, *map(str, SOURCES), "-o", str(built), "-lm"],
                              capture_output=True, text=True)
        if done.returncode != 0:
            log.info("native kernels did not compile with %s: %s", flags, done.stderr.strip()[:400])
            return False
        os.replace(built, target)  # atomic: a process compiling beside this one sees the old file or the new
    return True


@cache
def kernel() -> ctypes.CDLL | None:
    """The compiled library (`shopgen_decode_attention`, `shopgen_draw`, `shopgen_gelu_tanh`), or None where it
    cannot be built here."""
    if os.environ.get("SHOPGEN_NATIVE", "1") == "0":
        return None
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        log.info("no C compiler found: the text sampler runs on torch ops")
        return None
    sources = [path.read_bytes() for path in SOURCES + HEADERS]
    for flags in FLAG_SETS:
        key = hashlib.sha256(b"\0".join([*sources, " ".join(flags).encode(), machine.cpu().encode(), compiler.encode()]))
        target = cache_dir() / f"sampler-{key.hexdigest()[:16]}.so"
        try:
            if not target.exists() and not build(compiler, flags, target):
                continue
            return load(target)
        except (OSError, AttributeError) as exc:
            log.info("native kernels unavailable (%s)", exc)
    return None


def load(target: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(target))  # torch's OpenMP runtime is loaded first: the library shares it
    pointer, size = ctypes.c_void_p, ctypes.c_int64
    lib.shopgen_decode_attention.argtypes = [*[pointer] * 8, *[size] * 4, ctypes.c_float, ctypes.c_int]
    lib.shopgen_decode_attention.restype = size
    lib.shopgen_draw.argtypes = [*[pointer] * 3, *[size] * 3, ctypes.c_double, ctypes.c_double, ctypes.c_int]
    lib.shopgen_draw.restype = None
    lib.shopgen_draw_max_k.restype = size
    lib.draw_max_k = lib.shopgen_draw_max_k()  # read once: callers check top-k against it every step
    lib.shopgen_gelu_tanh.argtypes = [pointer, size]
    lib.shopgen_gelu_tanh.restype = None
    lib.shopgen_gelu_tanh_train.argtypes = [*[pointer] * 3, size, ctypes.c_int]
    lib.shopgen_gelu_tanh_train.restype = None
    return lib


def quantize(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`x` (..., dim) as the kernel's cache holds it: int8 values and a float scale per vector (absmax / 127),
    rounded as decode_attention.c rounds (to nearest, ties to even)."""
    top = x.abs().amax(-1)
    inv = torch.where(top > 0, 127.0 / top, torch.zeros_like(top))
    return torch.round(x * inv[..., None]).to(CACHE_DTYPE), top / 127.0


def decode_attention(lib: ctypes.CDLL, qkv: torch.Tensor, k: torch.Tensor, v: torch.Tensor, ks: torch.Tensor,
                     vs: torch.Tensor, pos: torch.Tensor, scale: float, slots: torch.Tensor | None = None) -> torch.Tensor:
    """For each row of `qkv` (rows, 3 * heads * head_dim), write its new key and value at `pos` into its
    slot of the layer cache `k`, `v` (slots, heads, span, head_dim; int8) and their scales `ks`, `vs` (slots,
    heads, span; float32), and return its attention output, (rows, heads * head_dim). Row i's slot is
    `slots[i]` (int64), or i. All contiguous."""
    n_slots, heads, span, dim = k.shape
    rows = len(qkv)
    ok = (all(t.is_contiguous() for t in (qkv, k, v, ks, vs, pos))
          and qkv.dtype == torch.float32 and k.dtype == v.dtype == CACHE_DTYPE and pos.dtype == torch.int64
          and k.shape == v.shape and ks.dtype == vs.dtype == torch.float32 and ks.shape == vs.shape == k.shape[:3]
          and qkv.shape == (rows, 3 * heads * dim) and pos.shape == (rows,))
    if slots is None:
        ok = ok and rows <= n_slots
    else:  # the C loop has no bounds of its own
        ok = (ok and slots.is_contiguous() and slots.dtype == torch.int64 and slots.shape == (rows,)
              and (rows == 0 or (int(slots.min()) >= 0 and int(slots.max()) < n_slots)))
    if not ok:
        raise ValueError("decode_attention needs contiguous float32 qkv (rows, 3*d), int8 caches with float32 "
                         "scales, int64 positions and int64 slots inside the cache")
    out = torch.empty(rows, heads * dim)
    if lib.shopgen_decode_attention(qkv.data_ptr(), k.data_ptr(), v.data_ptr(), ks.data_ptr(), vs.data_ptr(),
                                    pos.data_ptr(),
                                    None if slots is None else slots.data_ptr(), out.data_ptr(),
                                    rows, heads, dim, span, scale, torch.get_num_threads()):
        raise IndexError(f"a slot's cache is full ({span} cells): size the decoder for the longest row")
    return out


def draw(lib: ctypes.CDLL, logits: torch.Tensor, uniforms: torch.Tensor, top_k: int, top_p: float,
         temperature: float) -> torch.Tensor:
    """One token per row of `logits` (rows, vocab): among the `top_k` largest, the smallest prefix holding
    `top_p` of their softmax (at `temperature`), the token where `uniforms` (rows,) falls in its mass."""
    rows, vocab = logits.shape
    if not (logits.is_contiguous() and logits.dtype == torch.float32 and uniforms.dtype == torch.float64
            and uniforms.shape == (rows,) and uniforms.is_contiguous() and 1 <= top_k <= lib.draw_max_k):
        raise ValueError("draw needs contiguous float32 logits, float64 uniforms per row and 1 <= top_k <= its maximum")
    out = torch.empty(rows, dtype=torch.int64)
    lib.shopgen_draw(logits.data_ptr(), uniforms.data_ptr(), out.data_ptr(), rows, vocab, min(top_k, vocab),
                     top_p, 1.0 / max(temperature, 1e-5), torch.get_num_threads())
    return out


def gelu_tanh_(lib: ctypes.CDLL, x: torch.Tensor) -> torch.Tensor:
    """`x` (contiguous float32) replaced by gelu(x, approximate="tanh"); returns it."""
    if not (x.is_contiguous() and x.dtype == torch.float32):
        raise ValueError("gelu_tanh_ needs a contiguous float32 tensor")
    lib.shopgen_gelu_tanh(x.data_ptr(), x.numel())
    return x


def _gelu_train(lib: ctypes.CDLL, x: torch.Tensor, grad: torch.Tensor | None = None) -> torch.Tensor:
    out = torch.empty_like(x)
    lib.shopgen_gelu_tanh_train(x.data_ptr(), None if grad is None else grad.data_ptr(), out.data_ptr(), x.numel(),
                                torch.get_num_threads())
    return out


class _GeluTanhFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, lib: ctypes.CDLL) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.lib = lib
        return _gelu_train(lib, x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (x,) = ctx.saved_tensors
        return _gelu_train(ctx.lib, x, grad.contiguous()), None


def gelu_tanh(lib: ctypes.CDLL, x: torch.Tensor) -> torch.Tensor:
    """gelu(x, approximate="tanh") for training: gelu.c's forward, and its backward in autograd's. `x` contiguous
    float32 (under bf16 autocast the model takes torch's)."""
    if not (x.is_contiguous() and x.dtype == torch.float32):
        raise ValueError("gelu_tanh needs a contiguous float32 tensor")
    return _GeluTanhFunction.apply(x, lib)
