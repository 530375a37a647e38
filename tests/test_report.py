"""`evaluate` must tell real-like rows from broken or copied ones, write a self-contained report, and gate runs.

"Synthetic" catalogs here are real rows the scores can be checked against: fresh real rows (a third split,
which should score like the real hold-out), the same rows with rules broken and text detached from its
row, and verbatim training rows (which privacy must flag).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from conftest import SAMPLE_CSV, SAMPLE_SCHEMA, real_catalog

from shopgen import app
from shopgen.errors import ShopgenError
from shopgen.evaluation.gates import GatesFailed
from shopgen.evaluation.privacy import privacy_scores
from shopgen.evaluation.report import evaluate, split_holdout
from shopgen.evaluation.scores import possible_names
from shopgen.options import parse_gates


@pytest.fixture(scope="module")
def parts(sample_df):
    """train (1,400 rows), hold-out (500) and fresh real rows (500) the other two never saw."""
    rest, hold = split_holdout(sample_df, 500 / len(sample_df), seed=0)
    train, fresh = split_holdout(rest, 500 / len(rest), seed=1)
    return train, hold, fresh


@pytest.fixture(scope="module")
def fresh_report(parts, sample_schema):
    train, hold, fresh = parts
    return evaluate(train, fresh, sample_schema, holdout=hold)


@pytest.fixture(scope="module")
def broken_report(parts, sample_schema):
    train, hold, fresh = parts
    broken = fresh.copy()
    half = np.arange(len(broken)) % 2 == 0
    broken.loc[half, ["price", "list_price"]] = broken.loc[half, ["list_price", "price"]].to_numpy() * [1.5, 1.0]
    broken["category"] = broken["category"].sample(frac=1, random_state=3).to_numpy()  # text no longer matches
    return evaluate(train, broken, sample_schema, holdout=hold)


def test_fresh_real_rows_score_like_the_real_holdout(fresh_report):
    s = fresh_report.scores
    assert s["quality"] > 0.9 and abs(s["quality"] - s["quality_real"]) < 0.03
    assert s["diagnostic"] > 0.95
    assert s["rule_violations"] == s["invalid_rows"] == 0.0
    assert abs(s["text_consistency"] - s["text_consistency_real"]) < 0.05
    assert 0.35 < s["dcr_share"] < 0.65  # unseen rows: about half below the hold-out's median distance
    assert s["exact_copies"] < 0.05
    assert 0.85 < s["utility"] < 1.15
    for key in ("quality", "text_consistency", "dcr_median", "exact_copies", "utility_synthetic"):
        assert np.isfinite(s[key])


def test_broken_rules_and_detached_text_are_caught(fresh_report, broken_report):
    s, good = broken_report.scores, fresh_report.scores
    assert s["rule_violations"] == pytest.approx(0.5, abs=0.02)
    assert s["invalid_rows"] >= s["rule_violations"]
    assert s["consistency_category"] < 0.3 < good["consistency_category"] - 0.5
    assert s["column_pair_trends"] < good["column_pair_trends"] - 0.03
    assert s["quality"] < good["quality"]
    assert s["utility"] < good["utility"] - 0.05
    assert "rule list_price >= price" in broken_report.details["tabular"].failures


def test_copied_training_rows_are_flagged_by_privacy(parts, sample_schema):
    train, hold, _ = parts
    scores, _ = privacy_scores(train, hold, train.sample(400, random_state=0), sample_schema)
    assert scores["exact_copies"] == 1.0 and scores["exact_copies_real"] < 0.05
    assert scores["dcr_share"] > 0.95 and scores["dcr_median"] == 0.0


def test_every_score_is_named_by_possible_names_and_described(fresh_report, sample_schema):
    from shopgen.evaluation.scores import describe

    names = possible_names(sample_schema)
    assert set(fresh_report.scores) <= set(names)
    for key in fresh_report.scores:
        section, better, sentence = describe(key)
        assert section != "other" and sentence, key


def test_json_and_html_are_written_and_self_contained(fresh_report, sample_schema, tmp_path):
    fresh_report.to_json(tmp_path / "s.json")
    saved = json.loads((tmp_path / "s.json").read_text())
    assert saved["scores"]["quality"] == pytest.approx(fresh_report.scores["quality"], abs=1e-6)
    assert saved["meta"]["rows"] == {"train": 1400, "holdout": 500, "synthetic": 500, "synthetic_scored": 500}
    html = fresh_report.to_html(tmp_path / "r.html").read_text()
    assert not re.search(r"(src|href)\s*=\s*['\"]?(https?:)?//", html) and "<script" not in html and "<link" not in html
    plots = re.findall(r"<img class='plot' alt='([^']*)' src='data:image/svg\+xml;base64,", html)
    assert len(plots) == len(sample_schema.tabular_columns) + 1 + len(sample_schema.text_columns) + 1
    assert "column pair trends heatmap" in plots and "text length histogram of name" in plots
    assert "what it means" in html and "dcr_share" in html


def _write(df: pd.DataFrame, path) -> str:
    df.to_csv(path, index=False)
    return str(path)


def test_cli_logic_gates_pass_fail_and_reject_unknown_names(parts, tmp_path):
    train, hold, fresh = parts
    real = _write(pd.concat([train, hold]), tmp_path / "real.csv")
    synth = _write(fresh, tmp_path / "synth.csv")
    holdout = _write(hold, tmp_path / "hold.csv")
    report = tmp_path / "r.html"
    passed = app.evaluate(_write(train, tmp_path / "train.csv"), synth, SAMPLE_SCHEMA, report=report,
                          json=tmp_path / "s.json", holdout=holdout, minimum={"quality": 0.8},
                          maximum={"rule_violations": 0}).check()
    assert report.is_file() and (tmp_path / "s.json").is_file() and passed.checked == 2 and not passed.failed

    with pytest.raises(GatesFailed) as failed:
        app.evaluate(real, synth, SAMPLE_SCHEMA, report=report, holdout="0.2",
                     minimum={"quality": 0.999, "text_consistency": 0.5, "utility": 5}).check()
    message = str(failed.value)
    assert failed.value.exit_code == 1 and "\n" not in message
    assert re.fullmatch(r"gates failed: quality 0\.\d+ < 0\.999; utility [\d.]+ < 5", message), message

    (tmp_path / "never.html").unlink(missing_ok=True)
    with pytest.raises(ShopgenError) as unknown:
        app.evaluate(real, synth, SAMPLE_SCHEMA, report=tmp_path / "never.html", minimum={"qualty": 0.8})
    assert unknown.value.exit_code == 2 and "did you mean 'quality'" in str(unknown.value)
    assert "valid names: quality, quality_real" in str(unknown.value) and "\n" not in str(unknown.value)
    assert not (tmp_path / "never.html").exists()


@pytest.mark.parametrize("kwargs, message", [
    ({"holdout": "1.5"}, "outside (0, 1)"),
    ({"holdout": "nope.csv"}, "neither a fraction"),
    ({"target": "nope"}, "has no column 'nope'"),
])
def test_cli_logic_rejects_bad_input_before_work(tmp_path, kwargs, message):
    with pytest.raises(ShopgenError, match=re.escape(message)):
        app.evaluate(SAMPLE_CSV, SAMPLE_CSV, SAMPLE_SCHEMA, report=tmp_path / "r.html", **kwargs)
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("spec", ["quality", "quality=high", "=0.8"])
def test_gate_specs_that_are_not_score_equals_number_are_refused(spec):
    from shopgen.options import parse_gates

    with pytest.raises(ShopgenError, match=re.escape("is not SCORE=NUMBER")):
        parse_gates([spec], "--min")


def test_bad_frames_are_one_line_errors(parts, sample_schema):
    train, hold, fresh = parts
    with pytest.raises(ShopgenError, match="synthetic data lacks column"):
        evaluate(train, fresh.drop(columns=["price"]), sample_schema, holdout=hold)
    with pytest.raises(ShopgenError, match="hold-out"):
        evaluate(train.head(30), fresh, sample_schema)
    assert parse_gates(["quality=0.8", " utility = 1 "]) == {"quality": 0.8, "utility": 1.0}


# ---- the dmart report in headless Chromium, network off ----------------------------------------------
PROBE = """<script>window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var out = imgs.map(function (i) { return {alt: i.alt, w: i.naturalWidth, h: i.naturalHeight, ok: i.complete}; });
  var pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});</script></body>"""


def _chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("chromium is not installed; CI must install it (apt-get install -y chromium)")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return found


def test_dmart_report_renders_offline_in_headless_chromium(tmp_path):
    from shopgen.inference import infer_schema

    raw = pd.read_csv(real_catalog("dmart")).sample(2500, random_state=0)
    browser = _chromium()
    schema = infer_schema(raw, name="dmart").schema
    train, hold = split_holdout(raw, 0.2, seed=0)
    synthetic = train.sample(len(train), replace=True, random_state=1)
    synthetic["DiscountedPrice"] = (synthetic["DiscountedPrice"] * 0.9).round(1)
    report = evaluate(train, synthetic, schema, holdout=hold)
    page = report.to_html(tmp_path / "report.html")
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", PROBE))
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--disable-extensions", f"--user-data-dir={tmp_path / 'profile'}",
           "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>",  # every network request fails
           "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    found = re.search(r"<pre id=\"probe\">(.*?)</pre>", dom, re.S)
    assert found, f"the page did not load in chromium: {dom[:300]!r}"
    images = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    expected = len(schema.tabular_columns) + 1 + len(schema.text_columns) + 1
    assert len(images) == expected
    assert all(i["ok"] and i["w"] > 100 and i["h"] > 100 for i in images), images
    alts = {i["alt"] for i in images}
    assert {"column pair trends heatmap", "distribution of Price", "text length histogram of Description",
            "distance to closest record histogram"} <= alts


def test_utility_survives_a_synthetic_column_that_came_out_empty(parts, sample_schema):
    from shopgen.evaluation.utility import utility_scores

    train, hold, fresh = parts
    scores = utility_scores(train, hold, fresh.assign(rating=np.nan, units_sold=3), sample_schema)
    assert 0.5 < scores["utility"] < 1.2 and scores["utility_real"] > 0.5
