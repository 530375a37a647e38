"""How well a classifier tells drawn rows from real ones: the yardstick `--tabular auto` picks a model by.

A gradient-boosted classifier is cross-validated on real rows against as many drawn rows; its ROC AUC is
0.5 when the two cannot be told apart and 1.0 when every row gives itself away. Unlike column-by-column
scores it sees joint structure (a price that does not go with its shipping cost, a rating count above its
sales), which is what separates the models on small catalogs; it needs no target column, so it works on
a catalog nobody has looked at.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MAX_LEVELS = 250  # HistGradientBoosting takes at most 255 categories per feature
FOLDS = 3


def detection_auc(real: pd.DataFrame, drawn: pd.DataFrame, numeric: list[str], seed: int = 0) -> float:
    """Cross-validated AUC of real vs drawn rows over their shared columns; `numeric` are read as numbers."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    columns = [c for c in real.columns if c in drawn.columns]
    both = pd.concat([real[columns], drawn[columns]], ignore_index=True)
    features, categorical = [], []
    for c in columns:
        if c in numeric:
            features.append(pd.to_numeric(both[c], errors="coerce").to_numpy(float))
            categorical.append(False)
        else:
            text = both[c].astype(object).where(both[c].notna(), None).map(lambda v: v if v is None else str(v))
            kept = text.dropna().value_counts().index[:MAX_LEVELS]
            levels = pd.Series(np.arange(len(kept), dtype=float), index=kept)
            codes = text.map(levels).to_numpy(float)
            features.append(np.where(text.notna().to_numpy() & np.isnan(codes), float(MAX_LEVELS), codes))
            categorical.append(True)
    x = np.column_stack(features)
    y = np.r_[np.zeros(len(real)), np.ones(len(drawn))]
    model = HistGradientBoostingClassifier(max_iter=100, categorical_features=np.array(categorical), random_state=seed)
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    return float(np.mean(cross_val_score(model, x, y, cv=folds, scoring="roc_auc")))
