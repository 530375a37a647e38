"""Example DAG: fit -> sample -> validate -> (seed a database, evaluate), with params to change per run.

The same steps, defaults and seed as pipelines/catalog.yaml, through the same code (shopgen.pipeline),
so this DAG and `shopgen run pipelines/catalog.yaml` write the same catalog.csv. The defaults are a
CI-sized run (about a minute on 2 cores): a few tabular epochs and one text epoch on the demo catalog.
For a real catalog, trigger with data/schema of your own and drop epochs/text_epochs (the `fast`
preset's time budgets then decide). Each run writes under {workdir}/{logical date}/.

Where the demo files are: $SHOPGEN_HOME (a shopgen checkout), else the checkout shopgen was installed
from in editable mode. Install and run: see pipelines/README.md.
"""

from __future__ import annotations

import os
from pathlib import Path

import pendulum
from airflow.sdk import DAG, Param

import shopgen  # instant: shopgen loads torch and SDV only inside the operators' execute
from shopgen.airflow.operators import (
    ShopgenEvaluateOperator,
    ShopgenFitOperator,
    ShopgenSampleOperator,
    ShopgenSeedOperator,
    ShopgenValidateOperator,
)

HOME = Path(os.environ.get("SHOPGEN_HOME") or Path(shopgen.__file__).resolve().parents[1])
RUN = "{{ params.workdir }}/{{ ds }}"

with DAG(
    dag_id="shopgen_catalog",
    description="Learn a product catalog, generate a synthetic one, validate it, load it into a database.",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # runs share a model folder per date, and training wants both cores
    render_template_as_native_obj=True,  # {{ params.rows }} stays an int, a null param stays None
    tags=["shopgen", "synthetic-data"],
    params={
        "data": Param(str(HOME / "sample_data" / "products.csv"), type="string", description="Real catalog to learn (csv, parquet, jsonl)."),
        "schema": Param(str(HOME / "shopgen" / "demo" / "product_catalog.yaml"), type="string", description="Its YAML schema."),
        "workdir": Param(str(HOME / "out" / "airflow"), type="string", description="Each run writes under workdir/<date>/."),
        "rows": Param(200, type="integer", minimum=1, description="Rows to generate."),
        "seed": Param(7, type="integer", minimum=0, description="Same seed, same model and catalog."),
        "tabular": Param("ctgan", enum=["ctgan", "tvae", "copula"]),
        "preset": Param("fast", enum=["fast", "small", "base"]),
        "epochs": Param(3, type=["null", "integer"], description="Tabular epochs; null: the preset's time budget."),
        "text_epochs": Param(1, type=["null", "integer"], description="Text epochs; null: the preset's time budget."),
        "max_train_minutes": Param(10, type="number", description="Text time budget; above what text_epochs needs, training is reproducible."),
        "db": Param("", type="string", description="Database URL to seed; empty: an SQLite file in the run's folder."),
    },
) as dag:
    fit = ShopgenFitOperator(
        task_id="fit",
        data="{{ params.data }}", schema="{{ params.schema }}", out=f"{RUN}/model",
        tabular="{{ params.tabular }}", preset="{{ params.preset }}", epochs="{{ params.epochs }}",
        text_epochs="{{ params.text_epochs }}", max_train_minutes="{{ params.max_train_minutes }}",
        seed="{{ params.seed }}",
    )
    sample = ShopgenSampleOperator(
        task_id="sample",
        bundle=f"{RUN}/model", rows="{{ params.rows }}", seed="{{ params.seed }}", output=f"{RUN}/catalog.csv",
        text_precision="fp32",  # auto picks bf16 or int8 where a machine runs them faster: one example catalog everywhere
    )
    validate = ShopgenValidateOperator(task_id="validate", data=f"{RUN}/catalog.csv", schema="{{ params.schema }}")
    seed = ShopgenSeedOperator(
        task_id="seed",
        db="{{ params.db or (params.workdir ~ '/' ~ ds ~ '/shop.db') }}", table="products",
        data=f"{RUN}/catalog.csv", schema="{{ params.schema }}", if_exists="replace",
    )
    evaluate = ShopgenEvaluateOperator(
        task_id="evaluate",
        real="{{ params.data }}", synthetic=f"{RUN}/catalog.csv", schema="{{ params.schema }}",
        report=f"{RUN}/report.html", maximum={"rule_violations": 0}, seed="{{ params.seed }}",
    )

    fit >> sample >> validate >> [seed, evaluate]
