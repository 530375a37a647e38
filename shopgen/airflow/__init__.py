"""shopgen's Airflow provider: operators in `shopgen.airflow.operators` (`pip install shopgen[airflow]`).

Airflow finds the provider through the `apache_airflow_provider` entry point, which calls
`get_provider_info()`; it must import without Airflow (and without torch), so this module holds nothing else.
"""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    """Provider metadata in the form of Airflow's provider_info.schema.json (`airflow providers list`)."""
    from shopgen import __version__

    return {
        "package-name": "shopgen",  # must equal the distribution's name, or Airflow refuses the provider
        "name": "shopgen",
        "description": "Synthetic product catalogs: fit a model on a real catalog, sample validated rows "
                       "to files or databases, validate and evaluate them.",
        "versions": [__version__],
        "integrations": [{"integration-name": "shopgen", "tags": ["software"]}],
        "operators": [{"integration-name": "shopgen", "python-modules": ["shopgen.airflow.operators"]}],
    }
