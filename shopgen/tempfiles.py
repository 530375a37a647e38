"""Work in progress beside its target, named so that a later run can clean up after a killed one.

Every output (file or bundle) is written to a sibling `.<name>.shopgen-tmp-<pid>-<random>` and renamed
into place, so a reader never sees half of it. A `kill -9` leaves the sibling behind; the next write to
the same target removes those whose process is gone, and only those: nothing it did not name itself.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

MARK = ".shopgen-tmp-"


def temp_path(target: Path) -> Path:
    return target.with_name(f".{target.name}{MARK}{os.getpid()}-{os.urandom(4).hex()}")


def remove_stale(target: Path) -> list[Path]:
    """Delete the temporaries of dead processes beside `target`; returns what was removed."""
    if not target.parent.is_dir():
        return []
    prefix = f".{target.name}{MARK}"
    removed = []
    for p in target.parent.iterdir():
        if not p.name.startswith(prefix):
            continue
        pid = p.name[len(prefix):].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
