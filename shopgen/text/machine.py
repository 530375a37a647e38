"""What this machine is, and where shopgen keeps what it learned about it (compiled kernels, timings).

$SHOPGEN_CACHE_DIR, else $XDG_CACHE_HOME/shopgen, else ~/.cache/shopgen. Entries are keyed by the CPU
(model name and instruction flags), so a cache directory shared between machines never mixes them.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path


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
