"""The saved model bundle: a directory written atomically whose files are checked before use.

`manifest.json` records versions and the sha256 of every file; loading verifies all of them first, so
a truncated or accidentally changed bundle is refused. Hashes stored beside the files do not stop
someone who can write the folder (they re-hash); two things do:
- nothing in a bundle can run code when loaded: weights are safetensors, the tabular model is read by
  an allow-list unpickler (shopgen.safepickle), the schema and manifest are data;
- with `SHOPGEN_BUNDLE_KEY` set, bundles are signed (HMAC-SHA256 over the manifest, which holds every
  file's hash) and only bundles signed with that key load: for teams that move bundles between machines.

A bundle is only ever written over a bundle: `--out` naming a folder of other files is refused, so a
typo never deletes someone's data.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from shopgen.errors import BundleError
from shopgen.schema import CatalogSchema
from shopgen.shop_schema import ShopSchema, read_any_schema
from shopgen.tempfiles import remove_stale, temp_path

# 2: the tabular model derives columns another column fixes and draws rare levels within a parent
# column (its pickle has `derived_`, `rare_parents_`, `rare_order_`); a format-1 bundle cannot sample.
# 3: it redraws levels their parent never had (`coherent_`).
# 4: the tabular model is a pickle without tensors plus tabular.safetensors, read by an allow-list unpickler.
FORMAT_VERSION = 4
MANIFEST = "manifest.json"
KEY_ENV = "SHOPGEN_BUNDLE_KEY"


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


def _signature(manifest: dict, key: str) -> str:
    body = json.dumps({k: v for k, v in manifest.items() if k != "signature"}, sort_keys=True, default=str)
    return hmac.new(key.encode(), body.encode(), hashlib.sha256).hexdigest()


def check_bundle_target(target: str | Path) -> None:
    """Refuse to write a bundle where it would replace something that is not a bundle."""
    target = Path(target)
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise BundleError(f"--out {str(target)!r} exists and is not a folder; give a new path or a bundle to replace")
    if target.is_dir() and any(target.iterdir()) and not _is_bundle(target):
        raise BundleError(
            f"--out {str(target)!r} is a folder that is not a shopgen bundle; refusing to replace it "
            "(give a new path, an empty folder or an existing bundle)"
        )


def _is_bundle(path: Path) -> bool:
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and "format_version" in manifest and isinstance(manifest.get("files"), dict)


def write_bundle(target: str | Path, fill: Callable[[Path], dict]) -> Path:
    """`fill(tmpdir)` writes the files and returns extra manifest fields; then the directory is swapped in."""
    target = Path(target)
    check_bundle_target(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(target)
    tmp = temp_path(target)
    tmp.mkdir()
    try:
        extra = fill(tmp)
        files = sorted(p for p in tmp.rglob("*") if p.is_file())
        manifest = {
            "format_version": FORMAT_VERSION,
            "versions": _versions(),
            **extra,
            "files": {p.relative_to(tmp).as_posix(): _sha256(p) for p in files},
        }
        key = os.environ.get(KEY_ENV)
        if key:
            manifest["signature"] = _signature(manifest, key)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
        old = None
        if target.exists():
            check_bundle_target(target)  # still a bundle (or empty) at the moment it is moved aside
            old = temp_path(target)
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
    if not isinstance(files, dict):
        raise BundleError(f"{str(path)!r} is not a shopgen bundle ({MANIFEST} lists no files); refit it")
    key = os.environ.get(KEY_ENV)
    if key:
        signature = manifest.get("signature")
        if not isinstance(signature, str) or not hmac.compare_digest(signature, _signature(manifest, key)):
            state = (f"is not signed, and {KEY_ENV} is set" if signature is None
                     else f"has a signature that does not match the key in {KEY_ENV}")
            raise BundleError(f"bundle {str(path)!r} {state}; refusing it (refit it with the key set, or unset the key)")
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
        if (path / name).is_symlink() or not (path / name).resolve().is_relative_to(path.resolve()):
            raise BundleError(f"bundle {str(path)!r}: {name} is a link; refusing to load it")
        if _sha256(path / name) != digest:
            raise BundleError(f"bundle {str(path)!r}: {name} does not match its recorded sha256; refusing to load a modified bundle")
    return manifest


SCHEMA = "schema.yaml"


@dataclass(frozen=True)
class Bundle:
    """A verified bundle's folder, manifest and schema: what a command needs before it loads the models.
    A shop's bundle has a ShopSchema and a model per learned table inside it."""

    path: Path
    manifest: dict
    schema: CatalogSchema | ShopSchema

    @property
    def is_shop(self) -> bool:
        return isinstance(self.schema, ShopSchema)


def open_bundle(path: str | Path) -> Bundle:
    """Verify a bundle once (`verify_bundle`) and read its schema; models load later from the result."""
    path = Path(path)
    manifest = verify_bundle(path)
    return Bundle(path, manifest, read_any_schema(path / SCHEMA))
