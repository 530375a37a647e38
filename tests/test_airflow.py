"""The Airflow provider: get_provider_info without Airflow, each operator's execute() on the tiny model,
and the example DAG run for real with dag.test() (offline, AIRFLOW_HOME in a temp dir), whose catalog
must equal, byte for byte, what `shopgen run pipelines/catalog.yaml` writes with the same seed.

Without Airflow installed these tests skip locally and fail in CI (CI=true): a missing extra must never
pass for a green run. Install it with `pip install -e .[airflow]`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, SAMPLE_CSV, SAMPLE_SCHEMA

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
DAG_FILE = ROOT / "pipelines" / "airflow" / "dags" / "shopgen_catalog.py"
LOGICAL_DATE = "2026-01-02"


def require(what: str, ok: bool, how: str) -> None:
    if not ok:
        if IN_CI:
            pytest.fail(f"{what} in CI: {how}")
        pytest.skip(f"{what}: {how}")


def airflow_installed() -> bool:
    try:
        import airflow.sdk  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def af():
    require("Airflow is not installed", airflow_installed(), "pip install -e .[airflow]")
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    from shopgen.airflow import operators

    return operators, AirflowException, AirflowFailException


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- the provider ------------------------------------------------------------------------------------
def test_provider_info_imports_without_airflow():
    code = ("import sys, json; from shopgen.airflow import get_provider_info as g; info = g(); "
            "print(json.dumps([info['package-name'], sorted(m for m in ('airflow', 'torch', 'pandas') if m in sys.modules)]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == ["shopgen", []]


def test_provider_info_matches_airflows_schema(af):
    import airflow
    import jsonschema

    from shopgen.airflow import get_provider_info

    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    info = get_provider_info()
    jsonschema.validate(info, schema)
    for group in info["operators"]:
        for module in group["python-modules"]:
            __import__(module)


def test_airflow_providers_list_shows_shopgen(af, tmp_path):
    registered = any(ep.value == "shopgen.airflow:get_provider_info" for ep in entry_points(group="apache_airflow_provider"))
    require("the apache_airflow_provider entry point is not installed", registered,
            "add it to pyproject.toml and reinstall: pip install -e .[airflow]")
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    proc = subprocess.run([sys.executable, "-m", "airflow", "providers", "list", "-o", "json"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    providers = {p["package_name"]: p for p in json.loads(proc.stdout[proc.stdout.index("["):])}
    assert "shopgen" in providers, sorted(providers)
    from shopgen import __version__

    assert providers["shopgen"]["version"] == __version__


# ---- operators' execute() on the tiny model ---------------------------------------------------------
def render_and_run(op, **context):
    op.render_template_fields(context)
    return op.execute(context)


def test_sample_validate_seed_operators(af, tiny_synth, tmp_path):
    ops, _, _ = af
    _, bundle = tiny_synth
    ctx = {"ds": LOGICAL_DATE, "params": {"rows": 20, "seed": 3, "work": str(tmp_path), "workers": 2}}
    sampled = render_and_run(ops.ShopgenSampleOperator(
        task_id="sample", bundle=str(bundle), rows="{{ params.rows }}", seed="{{ params.seed }}",
        output="{{ params.work }}/{{ ds }}/catalog.csv", conditions={"category": "{{ 'Books' }}"},
        text_workers="{{ params.workers }}",  # two processes write the text inside the task
    ), **ctx)
    path = tmp_path / LOGICAL_DATE / "catalog.csv"
    catalog = pd.read_csv(path)
    assert sampled["output"] == str(path) and sampled["rows"] == len(catalog) == 20 and sampled["seed"] == 3
    assert (catalog["category"] == "Books").all() and sampled["validation"]["success"]
    json.dumps(sampled)

    checked = render_and_run(ops.ShopgenValidateOperator(
        task_id="validate", data="{{ params.work }}/{{ ds }}/catalog.csv", schema=str(SAMPLE_SCHEMA)), **ctx)
    assert checked["success"] and checked["rows"] == 20 and checked["failures"] == {}

    db = tmp_path / "shop.db"
    seeded = render_and_run(ops.ShopgenSeedOperator(
        task_id="seed", db=f"sqlite:///{db}", table="products", bundle=str(bundle), rows="{{ params.rows }}",
        batch_size=8), **ctx)
    with sqlite3.connect(db) as con:
        assert con.execute("select count(*), count(distinct sku) from products").fetchone() == (20, 20)
    assert seeded["rows"] == 20 and seeded["table"] == "products"

    into_db = render_and_run(ops.ShopgenSampleOperator(
        task_id="to_db", bundle=str(bundle), rows=7, output=f"sqlite:///{db}", table="more"), **ctx)
    with sqlite3.connect(db) as con:
        assert con.execute("select count(*) from more").fetchone() == (7,) == (into_db["rows"],)


def test_operators_take_a_shop(af, tmp_path):
    """The fit, sample and seed operators take a folder of tables and a shop's bundle as the steps do, with
    `products` and `table_format` templated like any field."""
    from test_shop_synthesizer import shop_frames

    ops, _, _ = af
    real = tmp_path / "real"
    real.mkdir()
    for name, frame in shop_frames().items():
        frame.to_csv(real / f"{name}.csv", index=False)
    ctx = {"ds": LOGICAL_DATE, "params": {"work": str(tmp_path), "products": "real", "format": "jsonl"}}
    fitted = render_and_run(ops.ShopgenFitOperator(
        task_id="fit", data=str(real), out="{{ params.work }}/model", tabular="copula",
        products="{{ params.products }}"), **ctx)
    assert fitted["tables"].keys() == {"customers"}
    sampled = render_and_run(ops.ShopgenSampleOperator(
        task_id="sample", bundle=str(tmp_path / "model"), rows=12, output="{{ params.work }}/{{ ds }}/shop",
        table_format="{{ params.format }}"), **ctx)
    assert sampled["rows"]["customers"] == 12 and (tmp_path / LOGICAL_DATE / "shop" / "order_lines.jsonl").is_file()
    seeded = render_and_run(ops.ShopgenSeedOperator(
        task_id="seed", db=f"sqlite:///{tmp_path / 'shop.db'}", bundle=str(tmp_path / "model"), rows=9), **ctx)
    assert seeded["rows"]["customers"] == 9
    json.dumps([fitted, sampled, seeded])


def test_failed_validation_fails_the_task_without_retries(af, tmp_path, sample_df):
    ops, _, fail = af
    broken = sample_df.head(40).copy()
    broken.loc[5, "rating"] = 9.5  # outside 1..5
    broken.to_csv(tmp_path / "broken.csv", index=False)
    op = ops.ShopgenValidateOperator(task_id="validate", data=str(tmp_path / "broken.csv"), schema=str(SAMPLE_SCHEMA))
    with pytest.raises(fail) as exc:
        op.execute({})
    message = str(exc.value)
    assert message.startswith("shopgen validate: ") and "broken.csv fails validation" in message
    assert "1 of 40 rows" in message and "rating" in message and "\n" not in message


def test_bad_input_fails_the_task_with_shopgens_message(af, tmp_path):
    ops, airflow_error, fail = af
    op = ops.ShopgenSampleOperator(task_id="sample", bundle=str(tmp_path / "no_model"), rows=5,
                                   output=str(tmp_path / "c.csv"))
    with pytest.raises(airflow_error) as exc:
        op.execute({})
    assert not isinstance(exc.value, fail)  # retries may help here (a bundle still being written), so allowed
    assert str(exc.value).startswith("shopgen sample: ") and "no_model" in str(exc.value)


def test_sample_operator_passes_its_rendered_text_workers_on(af, tiny_synth, tmp_path):
    """A rendered text_workers reaches the sampler: 0 is refused there, by name, and nothing is written."""
    ops, airflow_error, _ = af
    _, bundle = tiny_synth
    op = ops.ShopgenSampleOperator(task_id="sample", bundle=str(bundle), rows=5, output=str(tmp_path / "c.csv"),
                                   text_workers="{{ params.workers }}")
    with pytest.raises(airflow_error, match="text_workers 0 is below 1"):
        render_and_run(op, params={"workers": 0})
    assert not (tmp_path / "c.csv").exists()


@pytest.mark.parametrize(("argument", "values", "bad", "message"), [
    ("guide_all_fields", ("false", "true"), "maybe", "guide_all_fields 'maybe' is not true or false"),
    ("text_precision", ("fp32", "bf16"), "fp8", "text_precision 'fp8' is unknown"),
    ("guided_tokens", ("0", "4"), "-1", "guided_tokens -1 is below 0"),
])
def test_sample_operator_passes_a_rendered_text_option_on(af, tiny_synth, tmp_path, argument, values, bad, message):
    """Guidance on every field or on fewer description tokens, or bf16 matmuls in the text decoder, reach the
    sampler from a template (the text of the same seed changes); a value the option does not take is refused by name, before anything is written."""
    ops, airflow_error, _ = af
    _, bundle = tiny_synth
    written = []
    for value in values:
        op = ops.ShopgenSampleOperator(task_id="sample", bundle=str(bundle), rows=12, seed=2,
                                       output=str(tmp_path / f"{value}.csv"), **{argument: "{{ params.value }}"})
        render_and_run(op, params={"value": value})
        written.append(pd.read_csv(tmp_path / f"{value}.csv")[["name", "description"]])
    assert not written[0].equals(written[1])
    op = ops.ShopgenSampleOperator(task_id="sample", bundle=str(bundle), rows=5, output=str(tmp_path / "c.csv"),
                                   **{argument: "{{ params.value }}"})
    with pytest.raises(airflow_error, match=message):
        render_and_run(op, params={"value": bad})
    assert not (tmp_path / "c.csv").exists()


def test_fit_and_evaluate_operators(af, tmp_path, sample_df):
    ops, _, fail = af
    sample_df.sample(300, random_state=2).to_csv(tmp_path / "small.csv", index=False)
    fitted = render_and_run(ops.ShopgenFitOperator(
        task_id="fit", data=str(tmp_path / "small.csv"), schema=str(SAMPLE_SCHEMA), out="{{ params.work }}/model",
        tabular="copula", text_epochs="{{ params.text_epochs }}", max_train_minutes=5,
    ), params={"work": str(tmp_path), "text_epochs": 1})
    assert fitted["rows"] == 300 and fitted["bundle"] == str(tmp_path / "model") and fitted["text"]["steps"] > 0
    render_and_run(ops.ShopgenSampleOperator(task_id="s", bundle=fitted["bundle"], rows=40,
                                             output=str(tmp_path / "c.csv")))
    op = ops.ShopgenEvaluateOperator(
        task_id="evaluate", real=str(SAMPLE_CSV), synthetic=str(tmp_path / "c.csv"), schema=str(SAMPLE_SCHEMA),
        report=str(tmp_path / "report.html"), json=str(tmp_path / "scores.json"),
        minimum={"quality": 0.999}, maximum={"rule_violations": 0},
    )
    with pytest.raises(fail) as exc:  # no 40-row catalog from a 300-row fit scores 0.999
        op.execute({})
    assert str(exc.value).startswith("shopgen evaluate: gates failed: quality ") and "< 0.999" in str(exc.value)
    scores = json.loads((tmp_path / "scores.json").read_text())["scores"]  # the report is written before the gate
    assert scores["rule_violations"] == 0 and 0 < scores["quality"] < 0.999
    assert (tmp_path / "report.html").is_file()


# ---- the example DAG, for real, against the YAML pipeline -------------------------------------------
DAG_TEST = textwrap.dedent('''
    """Run a DAG file from $AIRFLOW_HOME/dags with dag.test(); print the run's and tasks' states as JSON."""
    import importlib.util, json, os, sys
    from airflow.sdk import timezone

    path, conf = sys.argv[1], json.loads(sys.argv[2])
    spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run = module.dag.test(logical_date=timezone.datetime(2026, 1, 2), run_conf=conf)
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    print("RESULT " + json.dumps({"state": str(run.state), "tasks": states}))
''')

FAILING_DAG = textwrap.dedent('''
    from airflow.sdk import DAG
    from shopgen.airflow.operators import ShopgenValidateOperator

    with DAG(dag_id="shopgen_failing", schedule=None, params={"data": "", "schema": ""}) as dag:
        ShopgenValidateOperator(task_id="validate", data="{{ params.data }}", schema="{{ params.schema }}")
''')


def dag_test(home: Path, dag_file: Path, conf: dict) -> tuple[dict, str]:
    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    proc = subprocess.run([sys.executable, str(home / "run_dag.py"), str(dag_file), json.dumps(conf)],
                          capture_output=True, text=True, env=env, timeout=900)
    log = proc.stdout + proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, log[-4000:]
    return json.loads(lines[-1][len("RESULT "):]), log


@pytest.mark.slow
def test_example_dag_runs_and_matches_the_yaml_pipeline(af, tmp_path, sample_df):
    home = tmp_path / "airflow_home"
    (home / "dags").mkdir(parents=True)
    dag_file = home / "dags" / DAG_FILE.name  # Airflow 3's dag.test() syncs the DAG bundle: it must be in dags/
    shutil.copy(DAG_FILE, dag_file)
    (home / "dags" / "shopgen_failing.py").write_text(FAILING_DAG)
    (home / "run_dag.py").write_text(DAG_TEST)
    # The same pipeline without Airflow, from pipelines/catalog.yaml, in its own process, run beside the DAG.
    code = "import sys; from shopgen.pipeline import run; run(sys.argv[1], {'workdir': sys.argv[2]}, echo=print)"
    yaml_run = subprocess.Popen([sys.executable, "-c", code, str(ROOT / "pipelines" / "catalog.yaml"),
                                 str(tmp_path / "yaml")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
        migrate = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True,
                                 env=env, timeout=300)
        assert migrate.returncode == 0, migrate.stderr[-2000:]

        # The example DAG with its defaults (the CI-sized run), writing under tmp_path/dag/<logical date>/.
        result, log = dag_test(home, dag_file, {"workdir": str(tmp_path / "dag")})
        assert result["state"] == "success", log[-4000:]
        assert result["tasks"] == dict.fromkeys(["evaluate", "fit", "sample", "seed", "validate"], "success")
        run = tmp_path / "dag" / LOGICAL_DATE
        catalog = pd.read_csv(run / "catalog.csv")
        assert len(catalog) == 200 and catalog["sku"].is_unique
        with sqlite3.connect(run / "shop.db") as con:
            assert con.execute("select count(*) from products").fetchone() == (200,)
        assert (run / "report.html").is_file() and (run / "model" / "manifest.json").is_file()

        # A failing validation fails its task and the run, with shopgen's message in the task log.
        broken = sample_df.head(30).copy()
        broken.loc[2, "price"] = -5.0
        broken.to_csv(tmp_path / "broken.csv", index=False)
        result, log = dag_test(home, home / "dags" / "shopgen_failing.py",
                               {"data": str(tmp_path / "broken.csv"), "schema": str(SAMPLE_SCHEMA)})
        assert result == {"state": "failed", "tasks": {"validate": "failed"}}
        assert "shopgen validate: " in log and "broken.csv fails validation: 1 of 30 rows" in log

        _, yaml_err = yaml_run.communicate(timeout=900)
        assert yaml_run.returncode == 0, yaml_err[-4000:]
        assert sha256(tmp_path / "yaml" / "catalog.csv") == sha256(run / "catalog.csv")
    finally:
        if yaml_run.poll() is None:
            yaml_run.kill()
            yaml_run.communicate()


# ---- one implementation behind every door -------------------------------------------------------------
def _cli(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "shopgen.cli", *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr


def _bundle_files(path: Path) -> dict:
    """Each bundle file's hash, but two: SDV stamps the tabular pickle with a random id and its fit time,
    and the text model's state records its training's seconds (compared without them). The same catalog
    bytes below show the tabular models agree."""
    files = json.loads((path / "manifest.json").read_text())["files"]
    state = json.loads((path / "text" / "shopgen_text.json").read_text())
    timed = {k: v for k, v in state["stats"].items() if k not in ("seconds", "tokens_per_second")}
    return {**{n: d for n, d in files.items() if n not in ("tabular.pkl", "text/shopgen_text.json")},
            "text state": {**state, "stats": timed}}


def test_every_operator_takes_exactly_its_steps_parameters(af):
    """An option added to a step (or to FitOptions / TextSampling) that an operator lacks fails here."""
    from shopgen import pipeline

    ops, _, _ = af
    for op in (ops.ShopgenFitOperator, ops.ShopgenSampleOperator, ops.ShopgenValidateOperator,
               ops.ShopgenSeedOperator, ops.ShopgenEvaluateOperator):
        assert set(op.arguments) | {"show_progress"} == set(pipeline.parameters(op.step)) | {"show_progress"}, op


def test_cli_yaml_and_airflow_fit_and_sample_the_same_files(af, tmp_path, sample_df):
    """The same fit (bf16 text training included) and the same sample through the command line, a YAML
    pipeline and the operators: the same bundle files and the same catalog bytes."""
    ops, _, _ = af
    sample_df.sample(150, random_state=3).to_csv(tmp_path / "small.csv", index=False)
    fit = {"data": str(tmp_path / "small.csv"), "schema": str(SAMPLE_SCHEMA), "tabular": "copula",
           "text_epochs": 1, "max_train_minutes": 5, "text_precision": "bf16", "seed": 4}
    sample = {"rows": 20, "seed": 6, "guidance": 0.5, "text_workers": 1, "text_precision": "fp32"}

    _cli("fit", fit["data"], "--schema", fit["schema"], "--out", str(tmp_path / "cli"), "--tabular", "copula",
         "--text-epochs", "1", "--max-train-minutes", "5", "--text-precision", "bf16", "--seed", "4", "-q")
    _cli("sample", str(tmp_path / "cli"), "-n", "20", "-o", str(tmp_path / "cli.csv"), "--seed", "6",
         "--guidance", "0.5", "--text-workers", "1", "--text-precision", "fp32", "-q")

    from shopgen import pipeline

    pipeline.run({"steps": [{"fit": {**fit, "out": str(tmp_path / "yaml")}},
                            {"sample": {**sample, "bundle": str(tmp_path / "yaml"), "output": str(tmp_path / "yaml.csv")}}]})

    templated = {k: "{{ params." + k + " }}" for k in fit}
    render_and_run(ops.ShopgenFitOperator(task_id="fit", out=str(tmp_path / "dag"), **templated), params=fit)
    render_and_run(ops.ShopgenSampleOperator(task_id="sample", bundle=str(tmp_path / "dag"),
                                             output=str(tmp_path / "dag.csv"), **sample), params={})

    files = _bundle_files(tmp_path / "cli")
    assert json.loads((tmp_path / "cli" / "manifest.json").read_text())["text_training"]["precision"] == "bf16"
    assert _bundle_files(tmp_path / "yaml") == files and _bundle_files(tmp_path / "dag") == files
    assert sha256(tmp_path / "cli.csv") == sha256(tmp_path / "yaml.csv") == sha256(tmp_path / "dag.csv")
