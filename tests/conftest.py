"""Shared fixtures: the sample catalog, the real catalogs in ../shared/data, and one tiny fitted model."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from shopgen.text.prompt import PromptFormat
from shopgen.text.tokenizer import train_tokenizer

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
SAMPLE_CSV = ROOT / "sample_data" / "products.csv"
SAMPLE_SCHEMA = ROOT / "shopgen" / "demo" / "product_catalog.yaml"


def real_catalog(name: str) -> Path:
    path = SHARED_DATA / name / "products.csv"
    if not path.is_file():
        pytest.skip(f"real catalog {path} is absent (../shared/data is only on project machines)")
    return path


@pytest.fixture(scope="session")
def sample_df() -> pd.DataFrame:
    return pd.read_csv(SAMPLE_CSV)


@pytest.fixture(scope="session")
def sample_schema():
    from shopgen.schema import CatalogSchema

    return CatalogSchema.from_yaml(SAMPLE_SCHEMA)


@pytest.fixture(scope="session")
def tiny_synth(sample_schema, sample_df, tmp_path_factory):
    """A CTGAN + GPT fitted on 800 sample products in ~30 s, saved once and shared by the tests."""
    from shopgen.synthesizer import CatalogSynthesizer

    synth = CatalogSynthesizer(
        sample_schema, tabular="ctgan", preset="fast", epochs=5, max_train_minutes=1 / 3, show_progress=False,
    ).fit(sample_df.sample(800, random_state=0))
    # a 20-second model may end every description within the default 32 guided tokens; a 4-token lead keeps
    # what guiding every field adds observable (the bundle keeps it)
    synth.text_model_.sampling = replace(synth.text_model_.sampling, guided_tokens=4)
    path = tmp_path_factory.mktemp("bundle") / "model"
    synth.save(path)
    return synth, path


# ---- the text tests' shared tokenizer and both attention paths ----
@pytest.fixture(scope="module")
def fmt(sample_schema, sample_df) -> PromptFormat:
    return PromptFormat.fit(sample_schema, sample_df)


@pytest.fixture(scope="module")
def tokenizer(fmt, sample_df):
    texts = sample_df["name"].tolist() + sample_df["description"].tolist() + fmt.prompts(sample_df)
    return train_tokenizer(texts, 1024, fmt.special_tokens)


@pytest.fixture(params=["native", "torch"])
def attention(request, monkeypatch):
    """Both attention paths of the slot decoder: the compiled kernel (shopgen.text.kernels) and the torch ops."""
    from shopgen.text import kernels

    if request.param == "torch":
        monkeypatch.setenv("SHOPGEN_NATIVE", "0")
    kernels.kernel.cache_clear()
    if request.param == "native":
        from textkit import native_kernel

        native_kernel()
    yield request.param
    kernels.kernel.cache_clear()
