"""TabularModel: SDV (CTGAN, TVAE or Gaussian copula) on the schema's tabular columns.

Three things plain SDV lacks and a catalog needs:
- rare categorical levels share one "other" level during training and are drawn back at sample time
  from their frequencies given the row's "parent" (the coarser categorical column that tells most about
  them: a brand given its sub-category), so a brand column with 800 values does not one-hot into an
  800-wide input (that is what makes plain CTGAN take 11-33 s an epoch on dmart), every level still
  comes out, and a drawn brand still belongs to its row's aisle (which the text model is told);
- a drawn level its parent never had in training (CTGAN's "Tata" in an appliance aisle, common on a
  rare condition) is redrawn from the parent's own levels, for the same reason;
- a categorical column that another one fixes in the training data (dmart's SubCategory fixes its
  Category) is derived from it after sampling, so a hierarchy stays a hierarchy;
- numbers come out on the real grid (shopgen.grid): ordered levels (ratings, bucketed sales) are
  learned in order and drawn back exactly, price endings (.99, .00, a last digit 9) are drawn in the real shares, and
  derived columns (a total, a discount %) are computed from the drawn ones, so they always agree;
- training stops at the first epoch that would end past the preset's time budget, so a preset keeps its
  budget on any catalog (a larger catalog gets fewer epochs, not a longer wait);
- sampling is reproducible from a user seed, and conditional without collapsing on rare values.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

from shopgen.conditions import Conditions, matches
from shopgen.errors import ShopgenError
from shopgen.grid import Grid
from shopgen.hierarchy import OTHER, dependencies, group_rare, levels_given, rare_parent, redraw_unseen
from shopgen.inference import name_like, rare_levels
from shopgen.presets import TabularPreset
from shopgen.progress import progress_bar
from shopgen.schema import CatalogSchema

KINDS = ("ctgan", "tvae", "copula", "auto")
CANDIDATES = ("copula", "tvae", "ctgan")  # what "auto" chooses from
SELECTION_SHARE = 0.2  # rows "auto" holds out to judge the candidates by
TABLE = "catalog"
MAX_DRAW_FACTOR = 200  # give up on conditions that fewer than 1 in 200 drawn rows meet
MAX_BATCH = 50_000


class TabularModel:
    """Fit on a catalog's tabular columns; `sample(n, seed)` returns rows that satisfy the schema's rules."""

    def __init__(
        self,
        kind: str,
        preset: TabularPreset,
        epochs: int | None = None,
        batch_size: int | None = None,
        max_seconds: float | None = None,
        seed: int = 0,
    ) -> None:
        self.kind = kind
        self.preset = preset
        self.epochs = epochs
        self.batch_size = batch_size
        self.max_seconds = max_seconds
        self.seed = seed

    def fit(self, schema: CatalogSchema, df: pd.DataFrame, show_progress: bool = True) -> TabularModel:
        """Fit `kind`; "auto" first fits each candidate on 80 % of the rows, each in half the budget, and keeps
        the one whose draws a classifier tells apart least from the other 20 % (`selection_`: each one's
        detection AUC, 0.5 the best), then fits it on every row: about twice a single model's time."""
        if self.kind not in KINDS:
            raise ShopgenError(f"unknown tabular model {self.kind!r}; use one of {', '.join(KINDS)}")
        budget = self.max_seconds if self.max_seconds is not None else self.preset.max_seconds
        self.selection_ = self._select(schema, df, budget, show_progress) if self.kind == "auto" else {}
        self.kind_ = min(self.selection_, key=self.selection_.get) if self.selection_ else self.kind
        return self._fit_as(self.kind_, schema, df, budget, show_progress)

    def _select(self, schema: CatalogSchema, df: pd.DataFrame, budget: float, show_progress: bool) -> dict[str, float]:
        from shopgen.detection import detection_auc

        check = df.sample(frac=SELECTION_SHARE, random_state=self.seed)
        train = df.drop(check.index)
        numeric = [c.name for c in schema.learned_columns if c.is_numeric or c.type == "datetime"]
        moments = {c.name: c for c in schema.learned_columns if c.type == "datetime"}

        def readable(rows: pd.DataFrame) -> pd.DataFrame:
            out = rows.copy()
            for name, col in moments.items():
                out[name] = (col.parse_moments(out[name]) - pd.Timestamp(0)).dt.total_seconds()  # NaT stays missing
            return out

        scores = {}
        for kind in CANDIDATES:
            model = TabularModel(kind, self.preset, epochs=self.epochs, batch_size=self.batch_size,
                                 max_seconds=budget / 2, seed=self.seed).fit(schema, train, show_progress)
            drawn = model.sample(len(check), seed=self.seed)
            scores[kind] = round(detection_auc(readable(check[model.columns_]), readable(drawn), numeric, self.seed), 4)
        return scores

    def _fit_as(self, kind: str, schema: CatalogSchema, df: pd.DataFrame, budget: float,
                show_progress: bool) -> TabularModel:
        start = time.perf_counter()
        self.columns_ = [c.name for c in schema.learned_columns]
        data = df[self.columns_].copy()
        self.grid_ = Grid.from_schema(schema, data)
        data = self.grid_.encode(data)
        self.name_like_ = {  # rare levels of name-like columns: reported when drawn
            c.name: rare_levels(values) for c in schema.of_type("categorical")
            if c.name in self.columns_ and name_like(values := df[c.name].dropna().astype(str))
        }
        self.rare_ = {}
        for col in schema.of_type("categorical"):
            data[col.name], rare = group_rare(data[col.name], self.preset.max_categories)
            if rare is not None:
                self.rare_[col.name] = rare
        whole = [c.name for c in schema.of_type("categorical") if c.name in self.columns_ and c.name not in self.rare_]
        self.rare_order_ = sorted(self.rare_, key=lambda c: df[c].nunique())  # a parent is drawn before its child
        self.rare_parents_ = {
            name: rare_parent(df, name, self.rare_[name][0], whole + self.rare_order_[:k])
            for k, name in enumerate(self.rare_order_)
        }
        self.coherent_ = {
            name: (found[0], levels_given(df, name, found[0])) for name, found in self.rare_parents_.items() if found
        }
        self.derived_ = dependencies(df, [c.name for c in schema.of_type("categorical") if c.name in self.columns_])
        self.levels_ = {  # the levels the model saw, to refuse conditions on values it never met
            c: data[c].dropna().unique().tolist() for c in data.columns if not pd.api.types.is_numeric_dtype(data[c])
        }
        metadata = _metadata(schema, self.grid_)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.synth_ = _build(kind, metadata, self.epochs or self.preset.epochs,
                                 self.batch_size or self.preset.batch_size)
            self.synth_.add_constraints(_constraints(schema, self.grid_))
            # SDV 2.0's add_constraints rebuilds its data processor without the model's own transformer
            # defaults, so CTGAN/TVAE would see every category as a uniform float; put them back.
            self.synth_._update_default_transformers()
            _seed_everything(self.seed)
            try:
                processed = self.synth_.preprocess({TABLE: data})
            except Exception as exc:  # SDV reports rule violations in the training data here
                raise ShopgenError(f"the tabular model rejected the data: {str(exc).splitlines()[0]}") from exc
            if kind == "copula":
                with progress_bar(show_progress) as bar:
                    bar.add_task("fit GaussianCopula", total=None, info="")
                    self.synth_.fit_processed_data(processed)
                self.epochs_ = 0
            else:
                self.synth_._model_kwargs["epochs"] = self.epochs or self.preset.epochs
                _seed_everything(self.seed)
                self._fit_with_progress(processed, show_progress, None if self.epochs else start + budget)
                losses = getattr(self.synth_._model, "loss_values", None)
                self.epochs_ = int(losses["Epoch"].max()) + 1 if losses is not None and len(losses) else 0
        _drop_unused_fakers(self.synth_)
        self.fit_seconds_ = round(time.perf_counter() - start, 1)
        return self

    def _fit_with_progress(self, processed: dict, show_progress: bool, deadline: float | None) -> None:
        """Fit with a bar of epochs; with a deadline the bar's total is an upper bound, closed at the end."""
        total = self.synth_._model_kwargs["epochs"]
        info = f"{deadline - time.perf_counter():.0f} s budget" if deadline else ""
        done = [0]

        def on_epoch(k: int) -> None:
            done[0] = k
            bar.update(task, completed=k)

        with progress_bar(show_progress) as bar, _epoch_deadline(deadline):
            task = bar.add_task(f"fit {self.kind_.upper()}", total=total, info=info)
            self._watch_epochs(lambda: self.synth_.fit_processed_data(processed), on_epoch)
            bar.update(task, total=max(done[0], 1), completed=max(done[0], 1))

    def _watch_epochs(self, fit, on_epoch) -> None:
        """Run `fit` in a thread and report each finished epoch to `on_epoch`.

        SDV offers no callback; ctgan's models append one row per epoch to `loss_values`, which the
        main thread polls.
        """
        old = self.synth_._model
        errors: list[BaseException] = []

        def run() -> None:
            try:
                fit()
            except BaseException as exc:  # re-raised in the caller's thread
                errors.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        seen = -1
        while thread.is_alive():
            thread.join(0.05)
            model = self.synth_._model
            losses = getattr(model, "loss_values", None) if model is not None and model is not old else None
            done = 0 if losses is None or losses.empty else int(losses["Epoch"].max()) + 1
            if done > seen:
                seen = done
                on_epoch(done)
        if errors:
            raise errors[0]

    def sample(self, n: int, seed: int, conditions: Conditions | None = None) -> pd.DataFrame:
        """`n` rows meeting `conditions` (checked ones, see shopgen.conditions); same seed, same rows.

        Draws are filtered, in batches that grow with the measured acceptance, so a 1 % category costs
        a few larger batches instead of SDV's collapse. A level grouped into "other" during training is
        pinned instead: rows drawn as "other" take the requested level. Requiring their parent to carry
        it as well was measured and dropped: a rare brand in a rare aisle then fell under 0.5 % acceptance. Steering CTGAN's conditional vector was
        measured and dropped: on the sample catalog it raised acceptance from 4.4 % to 4.5 %.
        A condition nothing meets fails clearly instead of looping.
        """
        if not conditions:
            return self._draw(n, seed)
        conditions = {c: v if isinstance(v, tuple) else self._level(c, v) for c, v in conditions.items()}
        rng = np.random.default_rng(seed)
        fixed = {c: v for c, v in conditions.items() if c in self.rare_ and v in self.rare_[c][0]}
        keep = {c: v for c, v in conditions.items() if c in self.derived_ and not isinstance(v, tuple)}
        pinned = {c for c, v in conditions.items() if not isinstance(v, tuple)}
        kept, have, drawn = [], 0, 0
        while have < n:
            accept = have / drawn if drawn else 1.0
            k = int(min(MAX_BATCH, np.ceil((n - have) / max(accept, 1 / MAX_DRAW_FACTOR) * 1.2) + 8))
            rows = self._draw(k, int(rng.integers(2**31)), fixed, keep, pinned)
            ok = matches(rows, conditions)
            kept.append(rows[ok])
            have, drawn = have + int(ok.sum()), drawn + k
            if have < n and drawn >= MAX_DRAW_FACTOR * n:
                raise ShopgenError(
                    f"conditions {dict(conditions)} matched {have} of {drawn} drawn rows "
                    f"({have / drawn:.3%}); the model rarely produces such rows; widen the conditions"
                )
        self.last_acceptance_ = round(have / drawn, 4)
        return pd.concat(kept, ignore_index=True).iloc[:n].reset_index(drop=True)

    def _level(self, column: str, value: object) -> object:
        """The training value a condition names (compared as text, as `--where` gives it)."""
        known = self.levels_.get(column, []) + list(self.rare_.get(column, ([], []))[0])
        for level in known:
            if level != OTHER and str(level) == str(value):
                return level
        raise ShopgenError(
            f"condition {column}={value!r}: the model never saw this value in training; "
            f"seen values include {[v for v in known if v != OTHER][:8]}"
        )

    def _draw(self, n: int, seed: int, fixed: dict | None = None, keep: dict | None = None,
              pinned: set | None = None) -> pd.DataFrame:
        synth = self.synth_
        with warnings.catch_warnings(), _quiet():
            warnings.simplefilter("ignore")
            synth.reset_sampling()
            synth._set_random_state(seed)
            transformers = synth._data_processor._hyper_transformer.field_transformers
            # RDT's own RNGs (null masks) follow the seed too, keyed by sorted name: the dict's order comes
            # from a set inside SDV and changes with each process's string hashing
            for k, t in enumerate(transformers[name] for name in sorted(transformers)):
                if t is not None and getattr(t, "random_states", None) is not None:
                    t.random_states["reverse_transform"] = np.random.RandomState((seed * 7919 + k) % 2**32)
            rows = synth.sample(n)[TABLE].reset_index(drop=True)
        rng = np.random.default_rng(seed)
        for name in self.rare_order_:
            other = (rows[name] == OTHER).to_numpy()
            parent, table = self.rare_parents_[name] or (None, {})
            order = {value: k for k, value in enumerate(table)}
            draws = list(table.values())
            group = (rows[parent].map(order).fillna(-1) if parent else pd.Series(-1, index=rows.index)).to_numpy(int)
            if fixed and name in fixed:
                rows.loc[other, name] = fixed[name]
                continue
            for g in np.unique(group[other]):
                values, probs = self.rare_[name] if g < 0 else draws[g]
                at = other & (group == g)
                rows.loc[at, name] = rng.choice(np.array(values, dtype=object), size=int(at.sum()), p=probs)
        for name, (source, mapping, inverse) in self.derived_.items():
            if name in (keep or {}) and keep[name] in inverse:  # a condition on it: its source yields
                clash = ((rows[name] == keep[name]) & (rows[source].map(mapping) != keep[name])).to_numpy()
                values, probs = inverse[keep[name]]
                rows.loc[clash, source] = rng.choice(np.array(values, dtype=object), size=int(clash.sum()), p=probs)
        self._derive(rows)
        for name, (parent, table) in self.coherent_.items():
            if name not in (pinned or ()):
                redraw_unseen(rows, name, parent, table, rng)
        self._derive(rows)  # a redrawn level may be another column's source: the hierarchy holds after it too
        grid = getattr(self, "grid_", None)  # bundles saved before the grid existed draw without it
        return grid.decode(rows, rng) if grid is not None else rows

    def rare_copies(self, rows: pd.DataFrame) -> dict[str, int]:
        """Per name-like categorical column: rows whose value only a few training rows carried."""
        return {c: int(rows[c].astype(str).isin(levels).sum()) for c, levels in getattr(self, "name_like_", {}).items()}

    def _derive(self, rows: pd.DataFrame) -> None:
        for name, (source, mapping, _) in self.derived_.items():
            known = rows[source].isin(mapping.keys())
            rows.loc[known, name] = rows.loc[known, source].map(mapping)


def _metadata(schema: CatalogSchema, grid: Grid) -> Any:
    from sdv.metadata import Metadata

    md = Metadata()
    md.add_table(TABLE)
    for col in schema.learned_columns:
        if col.type == "datetime":
            md.add_column(col.name, table_name=TABLE, sdtype="datetime", datetime_format=col.format)
            continue
        categorical = not col.is_numeric or grid.binary(col.name)  # two levels have no order to learn
        md.add_column(col.name, table_name=TABLE, sdtype="categorical" if categorical else "numerical")
    for name in grid.flag_columns:
        md.add_column(name, table_name=TABLE, sdtype="categorical")
    return md


def _constraints(schema: CatalogSchema, grid: Grid) -> list:
    """SDV inequalities for the rules the grid does not already keep (a share cannot exceed its whole)."""
    from sdv.cag import Inequality

    learned = {c.name for c in schema.learned_columns}
    return [
        Inequality(low_column_name=r.low, high_column_name=r.high, strict_boundaries=r.strict)
        for r in schema.rules if {r.low, r.high} <= learned and grid.constrained(r.high, r.low)
    ]


def _build(kind: str, metadata: Any, epochs: int, batch_size: int) -> Any:
    common = {"enforce_min_max_values": True, "enforce_rounding": True}
    if kind == "copula":
        from sdv.single_table import GaussianCopulaSynthesizer

        return GaussianCopulaSynthesizer(metadata, **common)
    batch_size = max(10, batch_size // 10 * 10)  # ctgan needs an even multiple of its pac (10)
    if kind == "ctgan":
        from sdv.single_table import CTGANSynthesizer

        return CTGANSynthesizer(metadata, epochs=epochs, batch_size=batch_size, enable_gpu=False, **common)
    from sdv.single_table import TVAESynthesizer

    return TVAESynthesizer(metadata, epochs=epochs, batch_size=batch_size, enable_gpu=False, **common)


def _drop_unused_fakers(synth: Any) -> None:
    """SDV keeps a Faker per personal-data type, ready for columns this model never has; Faker pickles its
    methods through `getattr`, a name the bundle loader must not admit (shopgen.safepickle). Drop them."""
    from rdt.transformers.pii.anonymizer import AnonymizedFaker

    processor = getattr(synth, "_data_processor", None)
    defaults = getattr(processor, "_transformers_by_sdtype", None)
    if isinstance(defaults, dict):
        processor._transformers_by_sdtype = {k: v for k, v in defaults.items() if not isinstance(v, AnonymizedFaker)}


def _seed_everything(seed: int) -> None:
    import torch

    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class _Until:
    """ctgan's epoch loop, ended before an epoch that would finish past `deadline` (the first one always runs)."""

    def __init__(self, loop: Any, deadline: float) -> None:
        self.loop, self.deadline = loop, deadline

    def __iter__(self):
        last = None
        for epoch in self.loop:
            now = time.perf_counter()
            if last is not None and now + (now - last) > self.deadline:
                return
            last = now
            yield epoch

    def __getattr__(self, name: str) -> Any:  # set_description and the like
        return getattr(self.loop, name)


@contextlib.contextmanager
def _epoch_deadline(deadline: float | None):
    """Bound CTGAN/TVAE training by time rather than epochs.

    ctgan fixes its epoch count before its own preprocessing, whose cost grows with the catalog in a way
    a probe on a subsample mis-predicts (flipkart: 16 of 60 s used); both models iterate epochs through
    their module's `tqdm`, which is wrapped here so the loop ends on time, after a whole epoch.
    """
    if deadline is None:
        yield
        return
    from ctgan.synthesizers import ctgan as ctgan_module
    from ctgan.synthesizers import tvae as tvae_module

    modules = [m for m in (ctgan_module, tvae_module) if hasattr(m, "tqdm")]
    originals = [m.tqdm for m in modules]
    for module, original in zip(modules, originals):
        module.tqdm = lambda *a, _t=original, **k: _Until(_t(*a, **k), deadline)
    try:
        yield
    finally:
        for module, original in zip(modules, originals):
            module.tqdm = original


@contextlib.contextmanager
def _quiet():
    """SDV prints tqdm bars ("Sampling rows") it offers no switch for; keep our stderr to our own bars."""
    with contextlib.redirect_stderr(io.StringIO()):
        yield
