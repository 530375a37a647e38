from __future__ import annotations

import json
import pickle
import shutil

import pytest

from shopgen.bundle import FORMAT_VERSION
from shopgen.errors import BundleError
from shopgen.synthesizer import CatalogSynthesizer


class _Trap:
    """Unpickling this would create a file: proof of whether a bundle was unpickled."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_bundle_has_manifest_with_versions_and_hashes(tiny_synth):
    _, path = tiny_synth
    manifest = json.loads((path / "manifest.json").read_text())
    assert {"sdv", "torch", "transformers", "shopgen"} <= set(manifest["versions"])
    assert {"schema.yaml", "tabular.pkl", "text/model.safetensors", "text/tokenizer.json", "text/config.json"} <= set(manifest["files"])
    assert manifest["training_rows"] == 800
    assert not list(path.parent.glob(".model.*")), "no temporary directory is left behind"


def test_tampered_bundle_is_refused_before_unpickling(tiny_synth, tmp_path):
    _, path = tiny_synth
    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    trap = tmp_path / "unpickled"
    (copy / "tabular.pkl").write_bytes(pickle.dumps(_Trap(str(trap))))
    with pytest.raises(BundleError, match="does not match its recorded sha256"):
        CatalogSynthesizer.load(copy)
    assert not trap.exists()


def test_extra_or_missing_files_are_refused(tiny_synth, tmp_path):
    _, path = tiny_synth
    extra = tmp_path / "extra"
    shutil.copytree(path, extra)
    (extra / "text" / "evil.py").write_text("print('hi')")
    with pytest.raises(BundleError, match="unexpected files"):
        CatalogSynthesizer.load(extra)
    missing = tmp_path / "missing"
    shutil.copytree(path, missing)
    (missing / "manifest.json").unlink()
    with pytest.raises(BundleError, match="not a shopgen bundle"):
        CatalogSynthesizer.load(missing)
    with pytest.raises(BundleError, match="does not exist"):
        CatalogSynthesizer.load(tmp_path / "nothing")


def test_a_bundle_of_another_format_asks_for_a_refit(tiny_synth, tmp_path):
    """An older bundle fails with one clear error, not an AttributeError deep inside sampling."""
    _, path = tiny_synth
    old = tmp_path / "old"
    shutil.copytree(path, old)
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["format_version"] = 1
    (old / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=rf"has format 1, this shopgen reads format {FORMAT_VERSION}; refit it with 'shopgen fit"):
        CatalogSynthesizer.load(old)


def test_saving_over_a_bundle_replaces_it_whole(tiny_synth, tmp_path):
    synth, _ = tiny_synth
    target = tmp_path / "b"
    synth.save(target)
    first = (target / "manifest.json").read_text()
    synth.save(target)
    assert CatalogSynthesizer.load(target, show_progress=False).n_training_rows_ == 800
    assert json.loads(first)["files"] == json.loads((target / "manifest.json").read_text())["files"]
