"""CatalogSynthesizer: the one object most users touch. Fit left to right once, sample top to bottom.

    rows = TabularModel.sample -> ids from patterns -> TextModel.generate(rows) -> cast -> validate (GE)

Rows that fail validation (or still copy a training text after redraws) are dropped and replaced by
new draws, so `sample(n)` returns exactly n valid rows or raises ValidationFailed.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from shopgen import safepickle
from shopgen.bundle import SCHEMA, Bundle, open_bundle, write_bundle
from shopgen.conditions import Conditions, check
from shopgen.errors import ValidationFailed
from shopgen.ids import generate_ids
from shopgen.limits import check_rows, check_training_rows
from shopgen.options import FitOptions, TextSampling
from shopgen.presets import get_preset
from shopgen.schema import CatalogSchema
from shopgen.tabular import TabularModel
from shopgen.validation import ValidationResult, validate

if TYPE_CHECKING:
    from shopgen.text.generate.sampler import SamplingConfig

MAX_ROUNDS = 10
TEXT_DIR = "text"


def _seconds(minutes: float | None) -> float | None:
    return None if minutes is None else minutes * 60


@dataclasses.dataclass
class SampleStats:
    """What one `sample` took: draws, validation failures and copy redraws, seconds per stage, and the
    type the text matmuls ran in; `rare_level_copies` counts rows per column whose value fewer than five
    training rows carried."""

    rounds: int = 0
    drawn: int = 0
    invalid: int = 0
    copies_redrawn: int = 0
    copies_dropped: int = 0
    seconds: dict[str, float] = dataclasses.field(default_factory=lambda: {"tabular": 0.0, "text": 0.0, "validate": 0.0})
    text_precision: str | None = None
    rare_level_copies: dict[str, int] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class Sample(NamedTuple):
    """A sampled catalog and its stats: `catalog, stats = synth.sample(n)`."""

    catalog: pd.DataFrame
    stats: SampleStats


class CatalogSynthesizer:
    """Learns a catalog described by `schema`; samples new catalogs that pass the schema's checks."""

    def __init__(
        self, schema: CatalogSchema, options: FitOptions | None = None, *, show_progress: bool = True, **params: object,
    ) -> None:
        """`options` (or any of its fields as keywords, e.g. `tabular="copula"`) say how `fit` learns."""
        self.schema = schema
        self.options = (options or FitOptions()).replace(**params)
        self.show_progress = show_progress

    def fit(self, data: pd.DataFrame, source: str | None = None) -> CatalogSynthesizer:
        """Learn `data` (checked against the schema first; `source` names it in errors); returns self."""
        from shopgen.text.estimator import TextModel

        o = self.options.check()
        p = get_preset(o.preset)
        df = self.schema.check_training(data, source=source or "data")
        check_training_rows(len(df))
        t0 = time.perf_counter()
        self.tabular_model_ = TabularModel(
            o.tabular, p.tabular, epochs=o.epochs, batch_size=o.batch_size,
            max_seconds=_seconds(o.tabular_minutes), seed=o.seed,
        ).fit(self.schema, df, self.show_progress)
        t1 = time.perf_counter()
        self.fit_warnings_ = [
            f"column {name!r} is categorical, but most of its values are carried by fewer than five rows: they look "
            "like names, and a generated value may point at one real product or seller (sample reports how many); "
            "declare it text in the schema to have new ones written"
            for name in self.tabular_model_.name_like_
        ]
        for message in self.fit_warnings_:
            warnings.warn(message, UserWarning, stacklevel=2)
        self.text_model_ = None
        if self.schema.text_columns:
            self.text_model_ = TextModel(
                p.text, base=o.text_base, max_seconds=_seconds(o.max_train_minutes),
                max_epochs=o.text_epochs, seed=o.seed, precision=o.text_precision,
            ).fit(self.schema, df, self.show_progress)
        self.n_training_rows_ = len(df)
        self.fit_seconds_ = {"tabular": round(t1 - t0, 1), "text": round(time.perf_counter() - t1, 1)}
        return self

    def sample(self, n: int, seed: int = 0, conditions: Conditions | None = None,
               text: TextSampling | None = None) -> Sample:
        """Exactly `n` valid rows, each meeting `conditions` (e.g. {"category": "Shoes", "price": (10, 50)}),
        and what it took to make them.

        The same seed and text workers give the same catalog. Texts are written for the conditioned rows,
        so they agree with the conditions too. `text` overrides the bundle's text sampling (TextSampling).
        """
        check_rows(n, seed)
        text = (text or TextSampling()).check()
        conditions = check(conditions, self.schema) if conditions else None
        sampling = self._sampling(text)
        rng = np.random.default_rng(seed)
        seen_ids: dict[str, set] = {c.name: set() for c in self.schema.of_type("id")}
        kept: list[pd.DataFrame] = []
        have, fail_share = 0, 0.0
        stats = SampleStats(text_precision=None if sampling is None else sampling.precision)
        last: ValidationResult | None = None
        for round_ in range(MAX_ROUNDS):
            need = n - have
            draw = int(np.ceil(need * (1 + min(fail_share, 0.9) * 1.5 + 0.02))) + 2
            sub_seed = int(rng.integers(2**31))
            batch, copied, timings = self._draw(draw, sub_seed, seen_ids, conditions, text.allow_copies, sampling, stats)
            t = time.perf_counter()
            last = validate(batch, self.schema)
            timings["validate"] = time.perf_counter() - t
            ok = np.ones(len(batch), dtype=bool)
            ok[last.bad_rows] = False
            stats.invalid += int((~ok).sum())
            ok &= ~copied
            stats.copies_dropped += int(copied.sum())
            kept.append(batch[ok])
            have += int(ok.sum())
            fail_share = 1 - ok.mean()
            stats.rounds = round_ + 1
            stats.drawn += draw
            for k, v in timings.items():
                stats.seconds[k] = round(stats.seconds[k] + v, 2)
            if have >= n:
                break
        if have < n:
            why = last.summary() if last is not None and not last.success else "generated texts kept copying training texts"
            raise ValidationFailed(f"only {have} of {n} rows passed after {MAX_ROUNDS} rounds: {why}")
        out = pd.concat(kept, ignore_index=True).iloc[:n].reset_index(drop=True)
        stats.rare_level_copies = self.tabular_model_.rare_copies(out)
        return Sample(out, stats)

    def _sampling(self, text: TextSampling) -> SamplingConfig | None:
        """The bundle's text sampling with `text`'s overrides, its precision decided here for every round."""
        if self.text_model_ is None:
            return None
        base = self.text_model_.sampling

        def pick(value, default):
            return default if value is None else value

        sampling = dataclasses.replace(
            base, temperature=pick(text.temperature, base.temperature), top_p=pick(text.top_p, base.top_p),
            guidance=pick(text.guidance, base.guidance), workers=pick(text.workers, base.workers),
            guided_fields=None if text.guide_all_fields else base.guided_fields,
            guided_tokens=pick(text.guided_tokens, base.guided_tokens), precision=pick(text.precision, base.precision),
        )
        return dataclasses.replace(sampling, precision=self.text_model_.sampling_precision(sampling))

    def _draw(self, k: int, seed: int, seen_ids: dict, conditions: Conditions | None, allow_copies: bool,
              sampling: SamplingConfig | None, stats: SampleStats):
        t0 = time.perf_counter()
        rows = self.tabular_model_.sample(k, seed=seed, conditions=conditions)
        id_rng = np.random.default_rng(seed)
        for col in self.schema.of_type("id"):
            rows[col.name] = generate_ids(col.pattern or r"[0-9]{12}", k, id_rng, col.name == self.schema.primary_key, seen_ids[col.name])
        t1 = time.perf_counter()
        copied = np.zeros(k, dtype=bool)
        if self.text_model_ is not None:
            texts, copied_s, redrawn = self.text_model_.generate(
                rows, seed=seed, allow_copies=allow_copies, sampling=sampling, show_progress=self.show_progress,
            )
            for c in texts.columns:
                rows[c] = texts[c].to_numpy()
            copied = copied_s.to_numpy()
            stats.copies_redrawn += redrawn
        t2 = time.perf_counter()
        return self.schema.cast(rows), copied, {"tabular": t1 - t0, "text": t2 - t1}

    # ---- persistence ---------------------------------------------------------------------------
    def iter_sample(self, n: int, seed: int = 0, batch_size: int = 1000,
                    text: TextSampling | None = None) -> Iterator[pd.DataFrame]:
        """`n` valid rows in batches of `batch_size`, for loads that must not hold all rows in memory.

        Primary keys stay unique across batches (each batch's draw only knows its own). The first batch
        uses `seed` itself, so one batch equals `sample(n, seed)`.
        """
        check_rows(n, seed, streamed=True)
        pk = self.schema.primary_key
        pattern = self.schema.column(pk).pattern if pk else None
        seen: set[str] = set()
        for i, start in enumerate(range(0, n, batch_size)):
            batch_seed = seed if i == 0 else int(np.random.default_rng([seed, i]).integers(2**31))
            batch = self.sample(min(batch_size, n - start), seed=batch_seed, text=text).catalog
            if pk:
                values = batch[pk].tolist()
                clash = [j for j, v in enumerate(values) if v in seen]
                seen.update(values)
                if clash:
                    fresh = generate_ids(pattern or r"[0-9]{12}", len(clash), np.random.default_rng([seed, i, 1]), True, seen)
                    batch.loc[batch.index[clash], pk] = fresh
            yield batch

    def save(self, path: str | Path) -> Path:
        """The model bundle: `write_files` into a folder that appears whole, with every file's hash."""
        return write_bundle(path, self.write_files)

    def write_files(self, folder: Path) -> dict:
        """The model's files in `folder` (a bundle's, or one table's inside a shop's); returns what the
        manifest records about it, which `read_files` needs back."""
        (folder / SCHEMA).write_text(self.schema.to_yaml(), encoding="utf-8")
        safepickle.dump(self.tabular_model_, folder / "tabular.pkl", folder / "tabular.safetensors")
        if self.text_model_ is not None:
            self.text_model_.save_pretrained(folder / TEXT_DIR)
        return {
            "schema": self.schema.to_dict(), "training_rows": self.n_training_rows_,
            "tabular": self.options.tabular, "preset": self.options.preset, "fit_seconds": self.fit_seconds_,
            "tabular_epochs": getattr(self.tabular_model_, "epochs_", None),
            "tabular_kind": self.tabular_model_.kind_, "tabular_selection": self.tabular_model_.selection_,
            "text_training": self.text_model_.stats_.to_dict() if self.text_model_ else None,
        }

    @classmethod
    def load(cls, bundle: str | Path | Bundle, show_progress: bool = True) -> CatalogSynthesizer:
        """Read a bundle with nothing able to run code: safetensors weights and an allow-list unpickler
        (shopgen.safepickle). A path is verified first (hashes, and the signature when a key is set); a
        `Bundle` from `open_bundle` already was."""
        opened = bundle if isinstance(bundle, Bundle) else open_bundle(bundle)
        return cls.read_files(opened.path, opened.schema, opened.manifest, show_progress)

    @classmethod
    def read_files(cls, folder: Path, schema: CatalogSchema, info: dict, show_progress: bool = True) -> CatalogSynthesizer:
        """The model `write_files` wrote to `folder` (already verified), `info` being what it returned."""
        from shopgen.text.estimator import TextModel

        self = cls(schema, tabular=info["tabular"], preset=info["preset"], show_progress=show_progress)
        self.tabular_model_ = safepickle.load(folder / "tabular.pkl", folder / "tabular.safetensors")
        text_dir = folder / TEXT_DIR
        self.text_model_ = TextModel.from_pretrained(text_dir, get_preset(self.options.preset).text) if text_dir.is_dir() else None
        self.n_training_rows_ = info["training_rows"]
        self.fit_seconds_ = info["fit_seconds"]
        return self
