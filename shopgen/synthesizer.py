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

import numpy as np
import pandas as pd

from shopgen import safepickle
from shopgen.bundle import verify_bundle, write_bundle
from shopgen.conditions import Conditions, check
from shopgen.errors import ShopgenError, ValidationFailed
from shopgen.ids import generate_ids
from shopgen.limits import check_rows, check_training_rows
from shopgen.presets import get_preset
from shopgen.schema import CatalogSchema
from shopgen.tabular import TabularModel
from shopgen.text.precision import SAMPLING_PRECISIONS
from shopgen.text.precision import check as check_precision
from shopgen.text.sampler import SamplingConfig
from shopgen.validation import ValidationResult, validate

MAX_ROUNDS = 10
TEXT_DIR = "text"


class CatalogSynthesizer:
    """Learns a catalog described by `schema`; samples new catalogs that pass the schema's checks."""

    def __init__(
        self,
        schema: CatalogSchema,
        tabular: str = "ctgan",
        preset: str = "fast",
        *,
        epochs: int | None = None,
        batch_size: int | None = None,
        tabular_max_seconds: float | None = None,
        text_max_seconds: float | None = None,
        text_epochs: int | None = None,
        text_base: str | None = None,
        text_precision: str = "fp32",
        seed: int = 0,
        show_progress: bool = True,
    ) -> None:
        self.schema = schema
        self.tabular = tabular
        self.preset = preset
        self.epochs = epochs
        self.batch_size = batch_size
        self.tabular_max_seconds = tabular_max_seconds
        self.text_max_seconds = text_max_seconds
        self.text_epochs = text_epochs
        self.text_base = text_base
        self.text_precision = text_precision
        self.seed = seed
        self.show_progress = show_progress

    def fit(self, data: pd.DataFrame) -> CatalogSynthesizer:
        from shopgen.text.model import TextModel

        p = get_preset(self.preset)
        df = self.schema.check_training(data)
        check_training_rows(len(df))
        t0 = time.perf_counter()
        self.tabular_model_ = TabularModel(
            self.tabular, p.tabular, epochs=self.epochs, batch_size=self.batch_size,
            max_seconds=self.tabular_max_seconds, seed=self.seed,
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
                p.text, base=self.text_base, max_seconds=self.text_max_seconds,
                max_epochs=self.text_epochs, seed=self.seed, precision=self.text_precision,
            ).fit(self.schema, df, self.show_progress)
        self.n_training_rows_ = len(df)
        self.fit_seconds_ = {"tabular": round(t1 - t0, 1), "text": round(time.perf_counter() - t1, 1)}
        return self

    def sample(
        self, n: int, seed: int = 0, conditions: Conditions | None = None, allow_copies: bool = False,
        temperature: float | None = None, top_p: float | None = None, guidance: float | None = None,
        text_workers: int | None = None, guide_all_fields: bool = False, text_precision: str | None = None,
        guided_tokens: int | None = None,
    ) -> pd.DataFrame:
        """Exactly `n` valid rows, each meeting `conditions` (e.g. {"category": "Shoes", "price": (10, 50)}).

        The same seed and `text_workers` give the same catalog. Texts are written for the conditioned rows,
        so they agree with the conditions too. `text_workers`: processes writing text, one thread each
        (default: one per torch thread). `guide_all_fields`: guidance steers every text field, not only the
        first (the name): a little more faithful text, for ~1.4x the text time (docs/text-model.md: guidance).
        `guided_tokens`: how many of the description's first tokens guidance still steers (default: the
        bundle's, 32), where the description picks its topic; 0 steers the name only.
        `text_precision`: the type of the text decoder's matmuls, "fp32", "bf16", "int8" or "auto" (the
        default: the faster of bf16 and int8 where a timing finds it faster than fp32, else fp32; docs/text-model.md).
        """
        check_rows(n, seed)
        if guidance is not None and guidance < 0:
            raise ShopgenError(f"guidance {guidance} is negative; use 0 (off) or more (e.g. 1.0)")
        if text_workers is not None and text_workers < 1:
            raise ShopgenError(f"text_workers {text_workers} is below 1; use 1 (sample in this process) or more")
        if guided_tokens is not None and guided_tokens < 0:
            raise ShopgenError(f"guided_tokens {guided_tokens} is negative; use 0 (the name only) or more (e.g. 32)")
        if text_precision is not None:
            check_precision(text_precision, "text precision", SAMPLING_PRECISIONS)
        conditions = check(conditions, self.schema) if conditions else None
        sampling = None
        if self.text_model_ is not None:
            base = self.text_model_.sampling
            sampling = dataclasses.replace(
                base, temperature=base.temperature if temperature is None else temperature,
                top_p=base.top_p if top_p is None else top_p,
                guidance=base.guidance if guidance is None else guidance,
                workers=base.workers if text_workers is None else text_workers,
                guided_fields=None if guide_all_fields else base.guided_fields,
                guided_tokens=base.guided_tokens if guided_tokens is None else guided_tokens,
                precision=base.precision if text_precision is None else text_precision,
            )
            # "auto" decided here, once: every round runs, and the stats report, the same type
            sampling = dataclasses.replace(sampling, precision=self.text_model_.sampling_precision(sampling))
        rng = np.random.default_rng(seed)
        seen_ids: dict[str, set] = {c.name: set() for c in self.schema.of_type("id")}
        kept: list[pd.DataFrame] = []
        have, fail_share = 0, 0.0
        stats = {"rounds": 0, "drawn": 0, "invalid": 0, "copies_redrawn": 0, "copies_dropped": 0,
                 "seconds": {"tabular": 0.0, "text": 0.0, "validate": 0.0},
                 "text_precision": None if sampling is None else sampling.precision}
        last: ValidationResult | None = None
        for round_ in range(MAX_ROUNDS):
            need = n - have
            draw = int(np.ceil(need * (1 + min(fail_share, 0.9) * 1.5 + 0.02))) + 2
            sub_seed = int(rng.integers(2**31))
            batch, copied, timings = self._draw(draw, sub_seed, seen_ids, conditions, allow_copies, sampling, stats)
            t = time.perf_counter()
            last = validate(batch, self.schema)
            timings["validate"] = time.perf_counter() - t
            ok = np.ones(len(batch), dtype=bool)
            ok[last.bad_rows] = False
            stats["invalid"] += int((~ok).sum())
            ok &= ~copied
            stats["copies_dropped"] += int(copied.sum())
            kept.append(batch[ok])
            have += int(ok.sum())
            fail_share = 1 - ok.mean()
            stats["rounds"] = round_ + 1
            stats["drawn"] += draw
            for k, v in timings.items():
                stats["seconds"][k] = round(stats["seconds"][k] + v, 2)
            if have >= n:
                break
        self.last_sample_stats_ = stats
        if have < n:
            why = last.summary() if last is not None and not last.success else "generated texts kept copying training texts"
            raise ValidationFailed(f"only {have} of {n} rows passed after {MAX_ROUNDS} rounds: {why}")
        out = pd.concat(kept, ignore_index=True).iloc[:n].reset_index(drop=True)
        stats["rare_level_copies"] = self.tabular_model_.rare_copies(out)
        return out

    def _draw(self, k: int, seed: int, seen_ids: dict, conditions: Conditions | None, allow_copies: bool,
              sampling: SamplingConfig | None, stats: dict):
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
            stats["copies_redrawn"] += redrawn
        t2 = time.perf_counter()
        return self.schema.cast(rows), copied, {"tabular": t1 - t0, "text": t2 - t1}

    # ---- persistence ---------------------------------------------------------------------------
    def iter_sample(self, n: int, seed: int = 0, batch_size: int = 1000) -> Iterator[pd.DataFrame]:
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
            batch = self.sample(min(batch_size, n - start), seed=batch_seed)
            if pk:
                values = batch[pk].tolist()
                clash = [j for j, v in enumerate(values) if v in seen]
                seen.update(values)
                if clash:
                    fresh = generate_ids(pattern or r"[0-9]{12}", len(clash), np.random.default_rng([seed, i, 1]), True, seen)
                    batch.loc[batch.index[clash], pk] = fresh
            yield batch

    def save(self, path: str | Path) -> Path:
        def fill(tmp: Path) -> dict:
            (tmp / "schema.yaml").write_text(self.schema.to_yaml(), encoding="utf-8")
            safepickle.dump(self.tabular_model_, tmp / "tabular.pkl", tmp / "tabular.safetensors")
            if self.text_model_ is not None:
                self.text_model_.save_pretrained(tmp / TEXT_DIR)
            return {
                "schema": self.schema.to_dict(), "training_rows": self.n_training_rows_,
                "tabular": self.tabular, "preset": self.preset, "fit_seconds": self.fit_seconds_,
                "tabular_epochs": getattr(self.tabular_model_, "epochs_", None),
                "tabular_kind": self.tabular_model_.kind_, "tabular_selection": self.tabular_model_.selection_,
                "text_training": self.text_model_.stats_.to_dict() if self.text_model_ else None,
            }

        return write_bundle(path, fill)

    @classmethod
    def load(cls, path: str | Path, show_progress: bool = True) -> CatalogSynthesizer:
        """Verify the bundle (hashes, and the signature when a key is set), then read it with nothing able to
        run code: safetensors weights and an allow-list unpickler (shopgen.safepickle)."""
        from shopgen.text.model import TextModel

        path = Path(path)
        manifest = verify_bundle(path)
        schema = CatalogSchema.from_yaml(path / "schema.yaml")
        self = cls(schema, tabular=manifest["tabular"], preset=manifest["preset"], show_progress=show_progress)
        self.tabular_model_ = safepickle.load(path / "tabular.pkl", path / "tabular.safetensors")
        text_dir = path / TEXT_DIR
        self.text_model_ = TextModel.from_pretrained(text_dir, get_preset(self.preset).text) if text_dir.is_dir() else None
        self.n_training_rows_ = manifest["training_rows"]
        self.fit_seconds_ = manifest["fit_seconds"]
        return self
