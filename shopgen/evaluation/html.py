"""The report as one self-contained HTML file: no script, no stylesheet or font from a network.

Plots are SVG drawn by shopgen.evaluation.svg and embedded as base64 `data:` images, so the file opens
offline, in a mail attachment or a CI artifact viewer, and every picture decodes like a PNG would.
"""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from shopgen.evaluation import svg

if TYPE_CHECKING:
    from shopgen.schema import CatalogSchema


class Report(Protocol):
    """What the page reads of a report (report.EvaluationReport, which imports this module to write itself)."""

    scores: dict[str, float]
    meta: dict[str, Any]
    schema: CatalogSchema
    train: pd.DataFrame
    holdout: pd.DataFrame
    synthetic: pd.DataFrame
    details: dict[str, Any]

MAX_PLOTTED_COLUMNS = 40
TOP_LEVELS = 10
BINS = 30
EXAMPLE_ROWS = 8
CELL_CHARS = 160
BETTER = {"higher": "higher ↑", "lower": "lower ↓", "half": "0.5 ideal", "real": "close to real"}

CSS = """
body{font-family:DejaVu Sans,Arial,sans-serif;margin:24px auto;max-width:1180px;color:#222;line-height:1.4}
h1{margin-bottom:4px} h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:36px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px} th,td{border:1px solid #ddd;padding:4px 8px;
vertical-align:top;text-align:left} th{background:#f4f4f4} td.num{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}.card{border:1px solid #ddd;border-radius:6px;padding:8px 12px;
min-width:120px}.card b{display:block;font-size:22px}.card span{font-size:12px;color:#555}
.plots{display:flex;flex-wrap:wrap;gap:8px} img.plot{border:1px solid #eee} .muted{color:#666;font-size:13px}
td.ex{max-width:260px;font-size:12px;overflow-wrap:anywhere}
"""


def _fmt(v: float | None) -> str:
    if v is None or not isinstance(v, (int, float, np.floating)) or not math.isfinite(float(v)):
        return "n/a"
    return f"{float(v):.3f}"


def _img(svg_text: str, alt: str) -> str:
    return f"<img class='plot' alt='{escape(alt)}' src='{svg.data_uri(svg_text)}'>"


def _score_rows(report: Report, section: str, skip_prefixes: tuple[str, ...] = ()) -> str:
    from shopgen.evaluation.scores import describe

    rows = []
    for key, value in report.scores.items():
        if key.endswith("_real") or key.startswith(skip_prefixes):
            continue
        sec, better, sentence = describe(key, report.meta.get("utility_target"))
        if sec != section:
            continue
        real = report.scores.get(f"{key}_real")
        rows.append(f"<tr><td><code>{escape(key)}</code></td><td class='num'>{_fmt(value)}</td>"
                    f"<td class='num'>{_fmt(real) if real is not None else '—'}</td>"
                    f"<td>{BETTER.get(better, better)}</td><td>{escape(sentence)}</td></tr>")
    if not rows:
        return "<p class='muted'>No scores in this section for this catalog.</p>"
    return ("<table><tr><th>score</th><th>synthetic</th><th>real hold-out</th><th>better</th><th>what it means</th></tr>"
            + "".join(rows) + "</table>")


def _numeric_plot(name: str, real: pd.Series, synth: pd.Series) -> str:
    r = pd.to_numeric(real, errors="coerce").dropna().to_numpy(float)
    s = pd.to_numeric(synth, errors="coerce").dropna().to_numpy(float)
    both = np.concatenate([r, s]) if len(r) + len(s) else np.zeros(1)
    label, log = "value", False
    positive = both.min() >= 0 and len(r) and np.median(r) > 0 and np.percentile(both, 99) / np.median(r) > 10
    if positive:
        r, s, both, label, log = np.log10(1 + r), np.log10(1 + s), np.log10(1 + both), "value (log scale)", True
    lo, hi = float(np.min(both)), float(np.max(both))
    edges = np.linspace(lo, hi if hi > lo else lo + 1, BINS + 1)
    share = [np.histogram(x, edges)[0] / max(len(x), 1) for x in (r, s)]
    return svg.histogram(edges.tolist(), [("real", share[0].tolist(), svg.REAL), ("synthetic", share[1].tolist(), svg.SYNTH)],
                         name, xlabel=label, ticks=(10 ** edges - 1).tolist() if log else None)


def _categorical_plot(name: str, real: pd.Series, synth: pd.Series) -> str:
    r, s = real.astype(object).where(real.notna(), "(missing)").astype(str), synth.astype(object).where(synth.notna(), "(missing)").astype(str)
    top = r.value_counts().index[:TOP_LEVELS].tolist()
    labels = top + (["(other)"] if r.nunique() > len(top) or (~s.isin(top)).any() else [])

    def shares(x: pd.Series) -> list[float]:
        counts = x.where(x.isin(top), "(other)").value_counts(normalize=True)
        return [float(counts.get(level, 0.0)) for level in labels]

    return svg.bars(labels, [("real", shares(r), svg.REAL), ("synthetic", shares(s), svg.SYNTH)],
                    f"{name} ({r.nunique()} levels)")


def _pair_heatmap(pairs: pd.DataFrame, columns: list[str]) -> str:
    index = {c: i for i, c in enumerate(columns)}
    matrix: list[list[float | None]] = [[None] * len(columns) for _ in columns]
    for a, b, score in zip(pairs["Column 1"], pairs["Column 2"], pairs["Score"]):
        if a in index and b in index:
            i, j = sorted((index[a], index[b]), reverse=True)
            matrix[i][j] = None if pd.isna(score) else float(score)
    for i in range(len(columns)):
        matrix[i][i] = None
    return svg.heatmap(columns, matrix, "Column pair trends (synthetic vs real)")


def _tabular(report: Report) -> str:
    tab = report.details.get("tabular")
    parts = [_score_rows(report, "tabular", skip_prefixes=("shape_",))]
    if tab is not None and len(tab.shapes):
        validity = {} if tab.validity is None or not len(tab.validity) else dict(zip(tab.validity["Column"], tab.validity["Score"]))
        rows = "".join(
            f"<tr><td>{escape(str(c))}</td><td>{escape(str(m))}</td><td class='num'>{_fmt(s)}</td>"
            f"<td class='num'>{_fmt(r)}</td><td class='num'>{_fmt(validity.get(c))}</td></tr>"
            for c, m, s, r in zip(tab.shapes["Column"], tab.shapes["Metric"], tab.shapes["Score"], tab.shapes["Score (real)"])
        )
        parts.append("<h3>Per column</h3><p class='muted'>Shape: 1 means the synthetic column has the real "
                     "distribution; the real hold-out's own shape score shows what sampling noise alone costs. "
                     "Validity: share of values inside the real range or category set.</p>"
                     "<table><tr><th>column</th><th>metric</th><th>shape (synthetic)</th><th>shape (real hold-out)</th>"
                     f"<th>validity</th></tr>{rows}</table>")
    if tab is not None and tab.rules:
        rows = "".join(f"<tr><td><code>{escape(r['rule'])}</code></td><td class='num'>{r['synthetic']:.2%}</td>"
                       f"<td class='num'>{r['real']:.2%}</td></tr>" for r in tab.rules)
        parts.append("<h3>Schema rules</h3><table><tr><th>rule</th><th>synthetic rows breaking it</th>"
                     f"<th>real hold-out rows breaking it</th></tr>{rows}</table>")
    if tab is not None and tab.failures:
        rows = "".join(f"<tr><td>{escape(k)}</td><td class='num'>{v}</td></tr>" for k, v in tab.failures.items())
        parts.append("<h3>Failed schema expectations (synthetic)</h3><table><tr><th>expectation</th>"
                     f"<th>failing rows</th></tr>{rows}</table>")
    columns = [c.name for c in report.schema.tabular_columns][:MAX_PLOTTED_COLUMNS]
    plots = []
    for name in columns:
        col = report.schema.column(name)
        real, synth = report.train[name], report.synthetic[name]
        plot = _numeric_plot(name, real, synth) if col.is_numeric else _categorical_plot(name, real, synth)
        plots.append(_img(plot, f"distribution of {name}"))
    parts.append("<h3>Distributions: real training rows vs synthetic</h3><div class='plots'>" + "".join(plots) + "</div>")
    if tab is not None and len(tab.pairs):
        parts.append("<h3>Column pair trends</h3><p class='muted'>1 means the pair's correlation (numeric) or "
                     "contingency table (otherwise) is the same as in the real data. SDMetrics scores only the pairs "
                     "that are related in the real data (|correlation| > 0.5 or association > 0.3); grey pairs are "
                     "unrelated there and not part of the quality score.</p>"
                     + _img(_pair_heatmap(tab.pairs, columns), "column pair trends heatmap"))
    return "".join(parts)


def _text(report: Report) -> str:
    schema = report.schema
    if not schema.text_columns:
        return "<p class='muted'>The schema has no text columns.</p>"
    parts = [_score_rows(report, "text")]
    plots = []
    for col in schema.text_columns:
        r = report.holdout[col.name].dropna().astype(str).str.len().to_numpy(float)
        s = report.synthetic[col.name].dropna().astype(str).str.len().to_numpy(float)
        both = np.concatenate([r, s]) if len(r) + len(s) else np.zeros(1)
        hi = float(np.percentile(both, 99)) if len(both) else 1.0
        edges = np.linspace(0, max(hi, 1.0), BINS + 1)
        share = [np.histogram(np.clip(x, 0, edges[-1]), edges)[0] / max(len(x), 1) for x in (r, s)]
        plots.append(_img(svg.histogram(edges.tolist(), [("real hold-out", share[0].tolist(), svg.REAL),
                                                         ("synthetic", share[1].tolist(), svg.SYNTH)],
                                        f"{col.name}: length", xlabel="characters (longest 1 % clipped)"),
                          f"text length histogram of {col.name}"))
    parts.append("<h3>Text lengths</h3><div class='plots'>" + "".join(plots) + "</div>")
    return "".join(parts)


def _privacy(report: Report) -> str:
    parts = [_score_rows(report, "privacy")]
    dist = report.details.get("distances") or {}
    d_syn, d_real = dist.get("synthetic"), dist.get("real")
    if d_syn is not None and d_real is not None and len(d_syn) and len(d_real) and np.isfinite(d_real).all():
        hi = float(np.percentile(np.concatenate([d_syn, d_real]), 99)) or 1.0
        edges = np.linspace(0, hi, BINS + 1)
        share = [np.histogram(np.clip(x, 0, hi), edges)[0] / len(x) for x in (d_real, d_syn)]
        parts.append(_img(svg.histogram(edges.tolist(), [("real hold-out", share[0].tolist(), svg.REAL),
                                                         ("synthetic", share[1].tolist(), svg.SYNTH)],
                                        "Distance to the nearest training row", xlabel="distance (rank / one-hot units)"),
                          "distance to closest record histogram"))
    return "".join(parts)


def _utility(report: Report) -> str:
    target = report.meta.get("utility_target")
    if not target:
        return "<p class='muted'>No numeric or categorical column to predict.</p>"
    return (f"<p>Target <code>{escape(target)}</code> ({escape(str(report.meta.get('utility_metric')))}), predicted by "
            "gradient-boosted trees from the other tabular columns and text features; both models are scored on "
            "the real hold-out.</p>" + _score_rows(report, "utility"))


def _examples(report: Report) -> str:
    rows = report.synthetic.sample(min(EXAMPLE_ROWS, len(report.synthetic)), random_state=report.meta.get("seed", 0))
    head = "".join(f"<th>{escape(str(c))}</th>" for c in rows.columns)
    body = []
    for record in rows.itertuples(index=False):
        cells = []
        for v in record:
            text = "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
            text = text if len(text) <= CELL_CHARS else text[:CELL_CHARS - 1] + "…"
            cells.append(f"<td class='ex'>{escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def render(report: Report) -> str:
    """The whole page."""
    from shopgen.evaluation.scores import HEADLINE, describe

    meta = report.meta
    cards = []
    for key in HEADLINE:
        if key in report.scores:
            _, better, sentence = describe(key, meta.get("utility_target"))
            real = report.scores.get(f"{key}_real")
            ref = f" · real {_fmt(real)}" if real is not None else ""
            cards.append(f"<div class='card' title='{escape(sentence)}'><span>{escape(key)}</span>"
                         f"<b>{_fmt(report.scores[key])}</b><span>{BETTER.get(better, better)}{ref}</span></div>")
    rows = meta["rows"]
    scored = "" if rows["synthetic_scored"] == rows["synthetic"] else f" (scored on a sample of {rows['synthetic_scored']})"
    seconds = ", ".join(f"{k} {v:.1f}s" for k, v in meta["seconds"].items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>shopgen evaluation: {escape(meta['schema'])}</title>
<style>{CSS}</style></head><body>
<h1>Synthetic catalog report: {escape(meta['schema'])}</h1>
<p class="muted">{rows['synthetic']} synthetic rows{scored} against {rows['train']} real training rows and
{rows['holdout']} real hold-out rows (hold-out: {escape(meta['holdout'])}). {escape(meta['date'])}. Took {seconds}.</p>
<div class="cards">{''.join(cards)}</div>
<p class="muted">Each score sits beside the same score for the real hold-out: real rows the synthesizer never saw.
That is the level sampling noise alone reaches. The hold-out is exact when the synthesizer was fitted on the
training part only; fitted on all real rows, privacy scores understate closeness to training rows.</p>
<h2 id="tabular">Tabular fidelity</h2>{_tabular(report)}
<h2 id="text">Text</h2>{_text(report)}
<h2 id="privacy">Privacy</h2>{_privacy(report)}
<h2 id="utility">Utility: train on synthetic, test on real</h2>{_utility(report)}
<h2 id="examples">Random synthetic rows</h2>{_examples(report)}
<p class="muted">Written by shopgen evaluate. Scores: SDMetrics (quality, diagnostic), shopgen.evaluation (text,
privacy, utility). All numbers are also in the JSON report.</p>
</body></html>
"""
