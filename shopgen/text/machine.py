"""What this machine is, and where shopgen keeps what it learned about it (compiled kernels, timings).

$SHOPGEN_CACHE_DIR, else $XDG_CACHE_HOME/shopgen, else ~/.cache/shopgen. Entries are keyed by the CPU
(model name and instruction flags), so a cache directory shared between machines never mixes them.
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; each process decides for itself
    fcntl = None


def cache_root() -> Path:
    return Path(os.environ.get("SHOPGEN_CACHE_DIR")
                or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "shopgen")


def cpu() -> str:
    """The CPU's model name and flags: what -march=native compiles for and what a timing depends on."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return "|".join(next((x for x in lines if x.startswith(k)), "") for k in ("model name", "flags"))
    except OSError:
        return platform.processor() or platform.machine()


ISA_LIMITS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS",
              "FBGEMM_ENABLE_INSTRUCTIONS")  # variables that cap the instructions torch's kernels dispatch to


def isa_limits(sep: str = "|") -> str:
    """The instruction caps set in the environment: with `ATEN_CPU_CAPABILITY=avx2` and the like, an AVX-512
    host times (and samples) as an AVX2 one does, so its timings are kept apart from the uncapped ones.
    `sep=" "` gives them as a shell prefix, as the benchmarks print them."""
    return sep.join(f"{name}={os.environ[name]}" for name in ISA_LIMITS if name in os.environ)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created with its folder): one process at a time measures and writes
    an entry. Where the folder cannot be written, or there are no locks, it runs unlocked."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a")  # noqa: SIM115 - held for the block's duration
    except OSError:
        yield
        return
    with handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield
