"""The score catalogue: every score `evaluate` reports, what it means, which way is better, its section.

Kept apart from the scoring (report.py) and its rendering (html.py), which both read it, and from the
command line's gates, which check a gate names a score this schema can have (`possible_names`).
"""

from __future__ import annotations

import re

from shopgen.schema import CatalogSchema

# What each score means, which way is better, and its section: (key pattern, section, better, sentence).
# `better`: "higher", "lower", "half" (0.5 is ideal), "real" (closer to the real hold-out's value).
SCORE_INFO: list[tuple[str, str, str, str]] = [
    (r"quality", "tabular", "higher",
     "SDMetrics quality: the mean of column shapes and column pair trends (what SDV's evaluate_quality reports)."),
    (r"column_shapes", "tabular", "higher",
     "How alike each column's distribution is in synthetic and real rows (KS / total-variation complement), averaged."),
    (r"column_pair_trends", "tabular", "higher",
     "How alike correlations and contingency tables of column pairs are, over pairs that are related in the real data."),
    (r"shape_(.+)", "tabular", "higher", "Column shape of {0}: 1 means the same distribution as the real column."),
    (r"diagnostic", "tabular", "higher",
     "SDMetrics diagnostic: values inside the real ranges and categories, and the same table structure."),
    (r"data_validity", "tabular", "higher",
     "Share of synthetic values inside the real column's range or category set (and unique keys)."),
    (r"data_structure", "tabular", "higher", "1 when the synthetic table has the real table's columns."),
    (r"rule_violations", "tabular", "lower", "Share of rows breaking a schema rule such as list_price >= price."),
    (r"invalid_rows", "tabular", "lower",
     "Share of rows failing any expectation the schema states (ranges, categories, nulls, patterns, rules)."),
    (r"text_consistency", "text", "higher",
     "Mean accuracy of real-text classifiers predicting a row's categorical conditions from its text."),
    (r"consistency_(.+)", "text", "higher", "Accuracy of a real-text classifier predicting {0} from the row's text."),
    (r"price_coherence", "text", "higher",
     "Spearman correlation between a row's price and the price a real-text regressor reads from its text."),
    (r"text_copy_rate", "text", "lower",
     "Largest share, over text columns, of texts equal to a training text after normalising case and spacing."),
    (r"copy_exact_(.+)", "privacy", "lower", "Share of {0} texts equal to a training text after normalisation."),
    (r"copy_span_(.+)", "privacy", "lower", "Share of {0} texts sharing a rare 8-word span with one training text."),
    (r"distinct1_(.+)", "text", "real", "Distinct words over all words in {0} (on equal-sized samples): lexical variety."),
    (r"distinct2_(.+)", "text", "real", "Distinct word pairs over all word pairs in {0}: phrase variety."),
    (r"text_length_ks", "text", "lower", "Largest KS distance, over text columns, between synthetic and real text lengths."),
    (r"length_ks_(.+)", "text", "lower", "KS distance between synthetic and real lengths of {0} (0: same distribution)."),
    (r"dcr_share", "privacy", "half",
     "Share of synthetic rows closer to their nearest training row than the real hold-out's median distance; "
     "0.5 is what unseen real rows give, higher means rows sit on top of training rows."),
    (r"dcr_median", "privacy", "real", "Median distance of a row to its nearest training row."),
    (r"exact_copies", "privacy", "lower", "Share of rows equal to a training row in every non-id column."),
    (r"rare_copies_(.+)", "privacy", "lower",
     "Share of {0} values (a high-cardinality column) that fewer than five training rows carry."),
    (r"grid_share_(.+)", "tabular", "real",
     "Share of {0} values ending as the real ones commonly do (.99, .00, a last digit 9...): the real grid."),
    (r"utility", "utility", "higher",
     "Score of a model trained on synthetic rows over the same model trained on real rows, both tested on the "
     "real hold-out: 1 means the synthetic catalog teaches as much."),
    (r"utility_synthetic", "utility", "higher", "Hold-out score of the model trained on synthetic rows ({target})."),
    (r"utility_real", "utility", "higher", "Hold-out score of the model trained on real training rows ({target})."),
]
HEADLINE = ["quality", "diagnostic", "rule_violations", "invalid_rows", "text_consistency", "price_coherence",
            "text_copy_rate", "dcr_share", "exact_copies", "utility"]
SECTIONS = ("tabular", "text", "privacy", "utility")


def describe(key: str, target: str | None = None) -> tuple[str, str, str]:
    """(section, which way is better, one sentence) for a score key; `*_real` keys describe their base score."""
    base = key[:-5] if key.endswith("_real") else key
    for pattern, section, better, sentence in SCORE_INFO:
        m = re.fullmatch(pattern, base)
        if m:
            return section, better, sentence.format(*m.groups(), target=target or "the target")
    return "other", "higher", ""


def possible_names(schema: CatalogSchema) -> list[str]:
    """Every score `evaluate` can report for this schema (some need enough data, e.g. 2 classes of 5 rows)."""
    from shopgen.evaluation.utility import default_target

    def pair(*keys: str) -> list[str]:
        return [k for key in keys for k in (key, f"{key}_real")]

    tabular = [c.name for c in schema.tabular_columns]
    names = pair("quality", "column_shapes", "column_pair_trends") + ["diagnostic", "data_validity", "data_structure"]
    names += pair(*(f"shape_{c}" for c in tabular)) + pair("rule_violations", "invalid_rows")
    names += pair(*(f"grid_share_{c.name}" for c in schema.tabular_columns if c.endings))
    if schema.text_columns:
        texts = [c.name for c in schema.text_columns]
        categorical = [c for c in schema.conditions if schema.column(c).type == "categorical"]
        names += pair("text_consistency", *(f"consistency_{c}" for c in categorical))
        if any(schema.column(c).is_numeric for c in schema.conditions):
            names += pair("price_coherence")
        names += pair("text_copy_rate", *(f"copy_{k}_{c}" for c in texts for k in ("exact", "span")))
        names += pair(*(f"distinct{k}_{c}" for c in texts for k in (1, 2)))
        names += ["text_length_ks"] + [f"length_ks_{c}" for c in texts]
    names += ["dcr_share"] + pair("dcr_median", "exact_copies")
    names += pair(*(f"rare_copies_{c.name}" for c in schema.of_type("categorical")))
    if default_target(schema) is not None:
        names += ["utility", "utility_synthetic", "utility_real"]
    return names
