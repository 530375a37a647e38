"""The saved model bundle: a directory written atomically whose files are checked before use.

`manifest.json` records versions and the sha256 of every file; `load` verifies all of them before it
unpickles anything, so a tampered or truncated bundle is refused instead of executed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from shopgen.errors import BundleError

# 2: the tabular model derives columns another column fixes and draws rare levels within a parent
# column (its pickle has `derived_`, `rare_parents_`, `rare_order_`); a format-1 bundle cannot sample.
# 3: it redraws levels their parent never had (`coherent_`).
FORMAT_VERSION = 3
MANIFEST = "manifest.json"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("shopgen", "sdv", "torch", "transformers", "great-expectations", "pandas"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "absent"
    return out


def write_bundle(target: str | Path, fill: Callable[[Path], dict]) -> Path:
    """`fill(tmpdir)` writes the files and returns extra manifest fields; then the directory is swapped in."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    mask = os.umask(0)
    os.umask(mask)
    tmp.chmod(0o777 & ~mask)  # mkdtemp makes 0700
    try:
        extra = fill(tmp)
        files = sorted(p for p in tmp.rglob("*") if p.is_file())
        manifest = {
            "format_version": FORMAT_VERSION,
            "versions": _versions(),
            **extra,
            "files": {p.relative_to(tmp).as_posix(): _sha256(p) for p in files},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def verify_bundle(path: str | Path) -> dict:
    """The manifest, once every listed file exists with its recorded hash and no file is unlisted."""
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"model bundle {str(path)!r} does not exist; create one with 'shopgen fit DATA --out {path}'")
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        files = manifest["files"]
    except (OSError, ValueError, KeyError):
        raise BundleError(f"{str(path)!r} is not a shopgen bundle (no readable {MANIFEST}); refit it") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"bundle {str(path)!r} has format {manifest.get('format_version')}, this shopgen reads format "
            f"{FORMAT_VERSION}; refit it with 'shopgen fit DATA --schema SCHEMA --out {path}'"
        )
    present = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()} - {MANIFEST}
    if present != set(files):
        odd = sorted(present ^ set(files))[:3]
        raise BundleError(f"bundle {str(path)!r} has missing or unexpected files {odd}; refusing to load it")
    for name, digest in files.items():
        if _sha256(path / name) != digest:
            raise BundleError(f"bundle {str(path)!r}: {name} does not match its recorded sha256; refusing to load a modified bundle")
    return manifest
