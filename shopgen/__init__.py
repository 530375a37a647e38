"""shopgen: learn a product catalog, generate new realistic and validated ones."""

import os
from importlib import import_module

# torch's spin-waiting OpenMP threads slowed a step 4x when another process shared the cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

_EXPORTS = {
    "CatalogSchema": "shopgen.schema",
    "CatalogSynthesizer": "shopgen.synthesizer",
    "FitOptions": "shopgen.options",
    "TextSampling": "shopgen.options",
    "evaluate": "shopgen.evaluation.report",
    "infer_schema": "shopgen.inference",
    "validate": "shopgen.validation",
    "write": "shopgen.sinks",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    """Import on first use, so `import shopgen` stays instant and torch/SDV load only when needed."""
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'shopgen' has no attribute {name!r}")
