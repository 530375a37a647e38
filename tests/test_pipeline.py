"""shopgen.pipeline: the steps both `shopgen run` and the Airflow operators run, and the YAML runner.

No Airflow here. Bad configs must fail before any step runs, in one line that says where; the steps
must write real, valid output on the tiny model.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import ROOT, SAMPLE_CSV, SAMPLE_SCHEMA

from shopgen import pipeline
from shopgen.errors import ShopgenError, ValidationFailed


def write_config(folder: Path, doc: dict) -> Path:
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def one_line(exc: pytest.ExceptionInfo, *needles: str) -> None:
    text = str(exc.value)
    assert "\n" not in text, text
    for needle in needles:
        assert needle in text, text


# ---- config errors: before anything runs -------------------------------------------------------------
@pytest.mark.parametrize("steps, needles", [
    ([{"smaple": {}}], ["step 1 'smaple' is unknown", "did you mean 'sample'", "fit, sample, validate"]),
    ([{"validate": {"data": str(SAMPLE_CSV), "schema": str(SAMPLE_SCHEMA), "rowz": 3}}],
     ["step 1 (validate)", "'rowz' is not a parameter", "data, schema"]),
    ([{"sample": {"bundle": "model", "output": "x.csv"}}], ["step 1 (sample)", "needs rows"]),
    ([{"fit": {"data": "nope/products.csv", "out": "m"}}],
     ["step 1 (fit)", "nope/products.csv", "does not exist and no earlier step writes it"]),
    ([{"sample": {"bundle": "m", "rows": "${rows}", "output": "c.csv"}}], ["${rows} is not defined", "--set rows="]),
    ([{"fit": {"data": "a.csv", "out": "m"}, "sample": {}}], ["step 1 must be one step name"]),
    ([], ["needs a list of steps"]),
])
def test_bad_configs_fail_in_one_line_saying_where(tmp_path, steps, needles):
    config = write_config(tmp_path, {"steps": steps})
    with pytest.raises(ShopgenError) as exc:
        pipeline.run(config)
    one_line(exc, str(config), *needles)


def test_config_file_errors(tmp_path):
    with pytest.raises(ShopgenError) as exc:
        pipeline.run(tmp_path / "missing.yaml")
    one_line(exc, "missing.yaml", "does not exist")
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [fit: {data: x\n")
    with pytest.raises(ShopgenError) as exc:
        pipeline.run(bad)
    one_line(exc, "not valid YAML")
    with pytest.raises(ShopgenError) as exc:
        pipeline.run(write_config(tmp_path, {"vars": {"rows": 1}, "steps": [{"validate": {}}]}), {"rowz": 5})
    one_line(exc, "--set rowz names no variable", "rows")
    with pytest.raises(ShopgenError) as exc:
        pipeline.parse_overrides(["rows"])
    one_line(exc, "--set 'rows' is not NAME=VALUE")


def test_vars_keep_types_and_paths_resolve_against_the_config(tmp_path, monkeypatch):
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "real.csv").write_text("a\n1\n")
    config = write_config(folder, {
        "vars": {"rows": 5, "work": "out/${date}"},
        "steps": [
            {"fit": {"data": "real.csv", "out": "${work}/model"}},
            {"sample": {"bundle": "${work}/model", "rows": "${rows}", "output": "sqlite:///${work}/shop.db"}},
            {"validate": {"data": "sqlite:///${work}/shop.db", "schema": str(SAMPLE_SCHEMA)}},
        ],
    })
    monkeypatch.chdir(tmp_path)  # relative paths must not depend on where the run starts
    plan = pipeline.load_config(config, pipeline.parse_overrides(["rows=7"]))
    (_, fit, _), (_, sample, _), (_, check, _) = plan
    work = (folder / "out").resolve()
    assert fit["data"] == str((folder / "real.csv").resolve())
    assert fit["out"].startswith(str(work)) and fit["out"].endswith("/model")
    assert sample["rows"] == 7 and isinstance(sample["rows"], int)
    assert sample["bundle"] == fit["out"]  # written by step 1, so not required to exist yet
    assert sample["output"].startswith("sqlite:////") and sample["output"] == check["data"]


def test_importing_the_pipeline_is_light():
    code = "import sys, shopgen.pipeline; print(sorted(m for m in ('torch', 'sdv', 'pandas', 'airflow') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---- the steps on the tiny model ---------------------------------------------------------------------
def test_run_sample_validate_seed_evaluate(tiny_synth, tmp_path):
    _, bundle = tiny_synth
    config = write_config(tmp_path, {
        "vars": {"rows": 30, "seed": 3},
        "steps": [
            {"sample": {"bundle": str(bundle), "rows": "${rows}", "seed": "${seed}", "output": "run/catalog.csv"}},
            {"validate": {"data": "run/catalog.csv", "schema": str(SAMPLE_SCHEMA)}},
            {"seed": {"data": "run/catalog.csv", "schema": str(SAMPLE_SCHEMA), "db": "run/shop.db",
                      "table": "products", "if_exists": "replace"}},
            {"evaluate": {"real": str(SAMPLE_CSV), "synthetic": "run/catalog.csv", "schema": str(SAMPLE_SCHEMA),
                          "report": "run/report.html", "maximum": {"rule_violations": 0}}},
        ],
    })
    lines: list[str] = []
    result = pipeline.run(config, echo=lines.append)
    sample, check, seeded, scores = result["steps"]
    catalog = pd.read_csv(tmp_path / "run" / "catalog.csv")
    assert sample["rows"] == len(catalog) == 30 and sample["validation"]["success"]
    assert check["success"] and check["rows"] == 30 and check["expectations"] > 10 and check["failures"] == {}
    with sqlite3.connect(tmp_path / "run" / "shop.db") as con:
        assert con.execute("select count(*), count(distinct sku) from products").fetchone() == (30, 30)
    assert seeded["rows"] == 30
    assert scores["scores"]["rule_violations"] == 0 and scores["gates"] == {"checked": 1, "failed": []}
    assert (tmp_path / "run" / "report.html").stat().st_size > 1000
    assert [line.split()[0] for line in lines] == ["sample", "validate", "seed", "evaluate"]
    import json

    json.dumps(result)  # every step's result is JSON-able (what Airflow keeps in XCom)


def test_same_seed_same_file_and_conditions(tiny_synth, tmp_path):
    _, bundle = tiny_synth
    a = pipeline.sample(bundle, "25", tmp_path / "a" / "c.csv", seed="5").to_dict()  # numbers as rendered templates
    b = pipeline.sample(bundle, 25, tmp_path / "b" / "c.csv", seed=5).to_dict()
    assert (tmp_path / "a" / "c.csv").read_bytes() == (tmp_path / "b" / "c.csv").read_bytes()
    assert a["rows"] == b["rows"] == 25
    shoes = pipeline.sample(bundle, 10, tmp_path / "shoes.parquet", seed=1,
                            conditions={"category": "Shoes", "price": [10, 200]}).to_dict()
    df = pd.read_parquet(tmp_path / "shoes.parquet")
    assert shoes["conditions"] == {"category": "Shoes", "price": [10.0, 200.0]}
    assert (df["category"] == "Shoes").all() and df["price"].between(10, 200).all() and len(df) == 10


def test_sample_into_a_database_and_validate_it_there(tiny_synth, tmp_path):
    _, bundle = tiny_synth
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    result = pipeline.sample(bundle, 12, url, seed=2, table="items").to_dict()
    assert result["table"] == "items" and result["rows"] == 12
    checked = pipeline.validate(url, SAMPLE_SCHEMA, table="items").to_dict()
    assert checked["success"] and checked["rows"] == 12
    with pytest.raises(ShopgenError) as exc:
        pipeline.validate(url, SAMPLE_SCHEMA, table="nope")
    one_line(exc, "table 'nope' is not in")


def test_seed_generates_in_batches_with_unique_keys(tiny_synth, tmp_path):
    _, bundle = tiny_synth
    db = tmp_path / "gen.db"
    result = pipeline.seed(str(db), table="products", bundle=str(bundle), rows="25", batch_size=10, seed=4).to_dict()
    assert result["rows"] == 25 and result["bundle"] == str(bundle)
    with sqlite3.connect(db) as con:
        assert con.execute("select count(*), count(distinct sku) from products").fetchone() == (25, 25)
    with pytest.raises(ShopgenError) as exc:
        pipeline.seed(str(db), table="products", bundle=str(bundle), rows=5)  # if_exists defaults to fail
    one_line(exc, "already exists")
    with pytest.raises(ShopgenError) as exc:
        pipeline.seed(str(db), table="t")
    one_line(exc, "needs either bundle and rows")


def test_failed_validation_fails_the_run_with_exit_1(tmp_path, sample_df):
    broken = sample_df.head(50).copy()
    broken.loc[[3, 7], "list_price"] = broken.loc[[3, 7], "price"] - 1  # breaks list_price >= price
    broken.to_csv(tmp_path / "broken.csv", index=False)
    config = write_config(tmp_path, {"steps": [{"validate": {"data": "broken.csv", "schema": str(SAMPLE_SCHEMA)}}]})
    with pytest.raises(ValidationFailed) as exc:
        pipeline.run(config)
    assert exc.value.exit_code == 1
    one_line(exc, "step 1 (validate)", "broken.csv fails validation", "2 of 50 rows", "list_price >= price")
    report = pipeline.validate(tmp_path / "broken.csv", SAMPLE_SCHEMA, fail="false").to_dict()
    assert not report["success"] and report["rows"] == 50 and any("list_price" in k for k in report["failures"])


def test_steps_check_their_arguments(tiny_synth, tmp_path):
    _, bundle = tiny_synth
    with pytest.raises(ShopgenError) as exc:
        pipeline.sample(bundle, "many", tmp_path / "c.csv")
    one_line(exc, "rows 'many' is not a whole number")
    with pytest.raises(ShopgenError) as exc:
        pipeline.sample(bundle, 5, tmp_path / "c.xlsx")
    one_line(exc, "unknown format")
    with pytest.raises(ShopgenError) as exc:
        pipeline.sample(bundle, 5, tmp_path / "c.csv", conditions={"colour": "red"})
    one_line(exc, "'colour'", "no such column")
    with pytest.raises(ShopgenError) as exc:
        pipeline.sample(bundle, 5, tmp_path / "c.csv", conditions=5)
    one_line(exc, "conditions 5: write a mapping")
    with pytest.raises(ShopgenError) as exc:
        pipeline.fit(SAMPLE_CSV, tmp_path / "m", tabular="gan")
    one_line(exc, "tabular 'gan' is unknown")


def test_fit_step_writes_a_bundle(tmp_path, sample_df):
    sample_df.sample(300, random_state=1).to_csv(tmp_path / "small.csv", index=False)
    result = pipeline.fit(tmp_path / "small.csv", tmp_path / "model", schema=SAMPLE_SCHEMA, tabular="copula",
                          text_epochs="1", max_train_minutes="5", seed="2").to_dict()
    assert result["rows"] == 300 and result["tabular"] == "copula" and result["text"]["epochs"] == 1.0
    assert (tmp_path / "model" / "manifest.json").is_file()
    sampled = pipeline.sample(tmp_path / "model", 5, tmp_path / "c.jsonl", seed=0).to_dict()
    assert sampled["rows"] == 5 and len(pd.read_json(tmp_path / "c.jsonl", lines=True)) == 5


def test_the_shipped_config_is_valid():
    plan = pipeline.load_config(ROOT / "pipelines" / "catalog.yaml")
    assert [name for name, _, _ in plan] == ["fit", "sample", "validate", "seed", "evaluate"]
    fit = plan[0][1]
    assert fit["data"] == str(SAMPLE_CSV) and fit["epochs"] == 3 and fit["text_epochs"] == 1


def test_a_shop_runs_through_the_same_steps(tmp_path):
    """fit on a folder of tables, sample a whole new shop, validate it (keys and rollups), seed it: the steps
    take a shop's bundle as they take a catalog's."""
    from test_shop_synthesizer import shop_frames

    real = tmp_path / "real"
    real.mkdir()
    for name, frame in shop_frames().items():
        frame.to_csv(real / f"{name}.csv", index=False)
    config = write_config(tmp_path, {"steps": [
        {"fit": {"data": "real", "out": "run/model", "tabular": "copula", "text_epochs": 1, "max_train_minutes": 1}},
        {"sample": {"bundle": "run/model", "rows": 15, "output": "run/shop", "products": "new", "table_format": "csv",
                    "text_workers": 1}},
        {"validate": {"data": "run/shop", "schema": "run/model"}},
        {"seed": {"bundle": "run/model", "rows": 10, "db": "run/shop.db"}},
        {"sample": {"bundle": "run/model", "rows": 30, "output": "run/customers", "seed": 1}},
        {"evaluate": {"real": "real", "synthetic": "run/customers", "schema": "run/model", "report": "run/shop.html",
                      "maximum": {"customer_set_copies": 0}}},
    ]})
    fitted, sampled, checked, seeded, _, scored = pipeline.run(config, echo=lambda line: None)["steps"]
    assert scored["gates"] == {"checked": 1, "failed": []} and scored["scores"]["customer_set_copies"] == 0
    assert "item_knn_recall_ratio" in scored["scores"] and (tmp_path / "run" / "shop.html").stat().st_size > 5000
    assert fitted["rows"] == {"customers": 30, "products": 40, "order_lines": len(shop_frames()["order_lines"])}
    assert sampled["rows"]["customers"] == 15 and sampled["products"] == "new"
    assert sorted(p.name for p in (tmp_path / "run" / "shop").iterdir()) == [
        "customers.csv", "order_lines.csv", "products.csv"]
    assert checked["success"] and set(checked["tables"]) == {"customers", "products", "order_lines"}
    assert seeded["rows"]["customers"] == 10
    with sqlite3.connect(tmp_path / "run" / "shop.db") as con:
        assert con.execute("select count(*) from customers").fetchone() == (10,)
