"""The demo catalog and its schema, made by the package itself: `shopgen demo` runs anywhere, offline."""

from __future__ import annotations

from pathlib import Path

from shopgen.demo.catalog import build_catalog, write_csv
from shopgen.schema import CatalogSchema

SCHEMA_PATH = Path(__file__).resolve().parent / "product_catalog.yaml"


def schema() -> CatalogSchema:
    """The demo catalog's schema (the file shipped beside this module)."""
    return CatalogSchema.from_yaml(SCHEMA_PATH)


__all__ = ["SCHEMA_PATH", "build_catalog", "schema", "write_csv"]
