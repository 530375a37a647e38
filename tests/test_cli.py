"""The `shopgen` command, run as a user runs it: a subprocess, its exit code, stdout and stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, SAMPLE_CSV, SAMPLE_SCHEMA, real_catalog

TINY = ["--epochs", "3", "--max-train-minutes", "0.25", "--quiet"]


def shopgen(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "shopgen.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd or ROOT,
        timeout=900,
    )


def one_line_error(proc: subprocess.CompletedProcess, code: int, *needles: str) -> None:
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("shopgen: error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, sample_df) -> Path:
    d = tmp_path_factory.mktemp("bad")
    (d / "empty.csv").write_text("")
    sample_df.drop(columns=["brand"]).to_csv(d / "missing_column.csv", index=False)
    bad_price = sample_df.astype({"price": object})
    bad_price.loc[3, "price"] = "N/A price"
    bad_price.to_csv(d / "bad_price.csv", index=False)
    (d / "malformed.yaml").write_text("name: x\ncolumns: {a: {type: numeric}\n")
    (d / "unknown_type.yaml").write_text("name: x\ncolumns: {a: {type: money}}\n")
    return d


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["fit", "{d}/empty.csv", "--schema", SAMPLE_SCHEMA, "--out", "{d}/out"], ["is empty"]),
        (["fit", "{d}/missing_column.csv", "--schema", SAMPLE_SCHEMA, "--out", "{d}/out"], ["lacks column(s) ['brand']"]),
        (["fit", "{d}/bad_price.csv", "--schema", SAMPLE_SCHEMA, "--out", "{d}/out"], ["'price'", "row 3", "N/A price"]),
        (["fit", SAMPLE_CSV, "--schema", "{d}/malformed.yaml", "--out", "{d}/out"], ["not valid YAML"]),
        (["fit", SAMPLE_CSV, "--schema", "{d}/unknown_type.yaml", "--out", "{d}/out"], ["unknown type 'money'"]),
        (["fit", "{d}/nope.csv", "--schema", SAMPLE_SCHEMA, "--out", "{d}/out"], ["does not exist"]),
        (["fit", SAMPLE_CSV, "--schema", SAMPLE_SCHEMA, "--out", "{d}/out", "--tabular", "gan"], ["--tabular 'gan'"]),
        (["fit", SAMPLE_CSV, "--out", "{d}/out", "--text-precision", "fp16"], ["--text-precision 'fp16'", "bf16"]),
        (["fit", SAMPLE_CSV, "--out", "{d}/out", "--text-precision", "int8"], ["--text-precision 'int8'", "bf16"]),
        (["sample", "{d}/no_bundle", "-n", "5", "-o", "{d}/out.csv"], ["model bundle", "does not exist"]),
        (["sample", "{d}/no_bundle", "-n", "5", "-o", "{d}/out.xlsx"], ["unknown format"]),
        (["sample", "{d}/no_bundle", "-n", "5", "-o", "{d}/out.csv", "--text-workers", "0"], ["--text-workers", "greater than or equal to 1"]),
        (["sample", "{d}/no_bundle", "-n", "5", "-o", "{d}/out.csv", "--text-precision", "fp8"], ["--text-precision 'fp8'", "bf16, int8"]),
        (["sample", "{d}/no_bundle", "-n", "5", "-o", "{d}/out.csv", "--guided-tokens", "-1"], ["--guided-tokens", "greater than or equal to 0"]),
        (["validate", "{d}/empty.csv", "--schema", SAMPLE_SCHEMA], ["is empty"]),
        (["schema", "infer", "{d}/empty.csv", "-o", "{d}/out.yaml"], ["is empty"]),
        (["fit", SAMPLE_CSV], ["Missing option '--out'"]),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_output(bad_inputs, args, needles):
    before = set(bad_inputs.iterdir())
    proc = shopgen(*[str(a).format(d=bad_inputs) for a in args])
    one_line_error(proc, 2, *needles)
    assert set(bad_inputs.iterdir()) == before, "nothing may be written on bad input"


def test_verbose_shows_the_traceback(bad_inputs):
    proc = shopgen("--verbose", "fit", bad_inputs / "empty.csv", "--out", bad_inputs / "out")
    assert proc.returncode == 2 and "Traceback" in proc.stderr


def _fit_sample_validate(data: Path, tmp: Path, n: int, schema: Path | None = None) -> pd.DataFrame:
    if schema is None:
        schema = tmp / "schema.yaml"
        proc = shopgen("schema", "infer", data, "-o", schema)
        assert proc.returncode == 0, proc.stderr
    proc = shopgen("fit", data, "--schema", schema, "--out", tmp / "model", "--preset", "fast", *TINY)
    assert proc.returncode == 0, proc.stderr
    assert "fitted" in proc.stdout
    # the same seed gives the same file: test_same_seed_same_rows_in_another_process
    proc = shopgen("sample", tmp / "model", "-n", n, "-o", tmp / "a.csv", "--seed", "1", "--quiet")
    assert proc.returncode == 0, proc.stderr
    proc = shopgen("validate", tmp / "a.csv", "--schema", schema)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1].startswith("PASS")
    return pd.read_csv(tmp / "a.csv")


def _copied_name_share(synthetic: pd.DataFrame, real: pd.DataFrame, column: str) -> float:
    from shopgen.text.guard import normalise

    seen = {normalise(t) for t in real[column].dropna().astype(str)}
    return synthetic[column].dropna().astype(str).map(lambda t: normalise(t) in seen).mean()


def test_end_to_end_on_the_sample_catalog(tmp_path, sample_df):
    out = _fit_sample_validate(SAMPLE_CSV, tmp_path, 120, schema=SAMPLE_SCHEMA)
    assert len(out) == 120 and list(out.columns) == list(sample_df.columns)
    assert (out["list_price"] >= out["price"]).all()
    assert _copied_name_share(out, sample_df, "name") <= 0.05
    # the format follows the suffix (every format's exact round trip: test_catalog_files_round_trip_exactly)
    proc = shopgen("sample", tmp_path / "model", "-n", 30, "-o", tmp_path / "c.parquet", "--guidance", "0", "--quiet")
    assert proc.returncode == 0, proc.stderr
    proc = shopgen("validate", tmp_path / "c.parquet", "--schema", SAMPLE_SCHEMA)
    assert proc.returncode == 0, proc.stdout
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")], "no temp files left behind"


def test_validate_exits_1_and_names_the_failure(tmp_path, sample_df):
    broken = sample_df.head(40).copy()
    broken.loc[0, "list_price"] = broken.loc[0, "price"] / 2
    broken.to_csv(tmp_path / "broken.csv", index=False)
    proc = shopgen("validate", tmp_path / "broken.csv", "--schema", SAMPLE_SCHEMA)
    assert proc.returncode == 1
    assert "FAIL  rule list_price >= price: 1 rows" in proc.stdout
    assert "ok    price: between 0.99 and 2500" in proc.stdout  # every expectation is listed


@pytest.mark.parametrize(("name", "rows", "name_column"), [("dmart", 900, "Name"), ("wish_summer_2020", 600, "title")])
def test_end_to_end_on_real_catalogs(tmp_path, name, rows, name_column):
    """Inferred schema, fast preset, every input column out, valid, reproducible, few copied names."""
    full = pd.read_csv(real_catalog(name))
    subset = full.sample(min(rows, len(full)), random_state=0)
    data = tmp_path / "products.csv"
    subset.to_csv(data, index=False)  # a temp copy for speed; never written into the repository
    out = _fit_sample_validate(data, tmp_path, 100)
    assert len(out) == 100
    assert list(out.columns) == list(full.columns)
    assert _copied_name_share(out, subset, name_column) <= 0.05


def test_run_a_pipeline_config(tmp_path, tiny_synth):
    """`shopgen run`: the YAML steps, paths relative to the config, --set overrides, a bad one exits 2."""
    _, bundle = tiny_synth
    config = tmp_path / "pipeline.yaml"
    config.write_text(
        "vars: {rows: 10}\n"
        "steps:\n"
        f"  - sample: {{bundle: '{bundle}', rows: '${{rows}}', seed: 1, output: out/c.csv}}\n"
        f"  - validate: {{data: out/c.csv, schema: '{SAMPLE_SCHEMA}'}}\n"
    )
    proc = shopgen("run", config, "--set", "rows=12", "--json", tmp_path / "r.json")
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_csv(tmp_path / "out" / "c.csv")) == 12
    assert [s["step"] for s in json.loads((tmp_path / "r.json").read_text())["steps"]] == ["sample", "validate"]
    one_line_error(shopgen("run", config, "--set", "rowz=1"), 2, "--set rowz names no variable")


def test_same_seed_same_rows_in_another_process(tiny_synth, tmp_path):
    """Sampling must not depend on the process's string hashing (SDV keeps transformers in a set order)."""
    _, bundle = tiny_synth
    outs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"c{hash_seed}.csv"
        proc = subprocess.run(
            [sys.executable, "-m", "shopgen.cli", "sample", str(bundle), "-n", "60", "--seed", "4", "-o", str(out), "--quiet"],
            capture_output=True, text=True, env={**__import__("os").environ, "PYTHONHASHSEED": hash_seed},
        )
        assert proc.returncode == 0, proc.stderr
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


def test_evaluate_writes_a_report_and_fails_a_missed_gate_in_one_line(tmp_path):
    report, scores = tmp_path / "report.html", tmp_path / "scores.json"
    # the "synthetic" catalog is the real one: every row is a copy, so a privacy gate must fail (exit 1),
    # and the report, written before the gates are checked, is there to say why
    one_line_error(shopgen("evaluate", SAMPLE_CSV, SAMPLE_CSV, "--schema", SAMPLE_SCHEMA, "--report", report,
                           "--json", scores, "--max", "exact_copies=0.01"), 1, "gates failed", "exact_copies")
    assert report.stat().st_size > 10_000 and json.loads(scores.read_text())["scores"]["quality"] > 0.9
    one_line_error(shopgen("evaluate", SAMPLE_CSV, SAMPLE_CSV, "--schema", SAMPLE_SCHEMA, "--report", report,
                           "--min", "no_such_score=1"), 2, "no_such_score")


def test_schema_infer_prints_a_decision_table(tmp_path):
    df = pd.read_csv(SAMPLE_CSV)
    df.loc[0, "price"] = 0.0  # a stand-in for "unknown": flagged as doubtful
    data = tmp_path / "shop.csv"
    df.to_csv(data, index=False)
    proc = shopgen("schema", "infer", data, "-o", tmp_path / "s.yaml")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.split()[:2] == ["name", "text"] for line in lines)
    assert any(line.startswith("? price") and "unknown" in line for line in lines)
    assert "evidence:" not in proc.stdout
    explained = shopgen("schema", "infer", data, "--explain")
    assert explained.returncode == 0
    assert "evidence:" in explained.stderr and "covered_by_repeated_levels" in explained.stderr
    assert explained.stdout.startswith("name: shop")  # stdout stays the YAML
