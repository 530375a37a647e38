"""TextModel: the estimator that fits a GPT (model.py) to write a row's text columns conditioned on its other
columns, and writes them for new rows.

Trained from scratch (the GPT sized by preset, BPE fitted on the catalog) or fine-tuned from a local
Hugging Face checkpoint. Saved as a `save_pretrained` directory; nothing is fetched from a hub.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

from shopgen.errors import ShopgenError
from shopgen.presets import TextPreset
from shopgen.progress import progress_bar
from shopgen.schema import CatalogSchema
from shopgen.text import SAMPLING_PRECISIONS
from shopgen.text.generate.sampler import FieldSpec, SamplingConfig
from shopgen.text.generate.shards import generate_sharded
from shopgen.text.guard import BOILERPLATE_SHARE, CopyGuard
from shopgen.text.loss import IGNORE
from shopgen.text.model import GPT, GPTConfig
from shopgen.text.precision import resolve as resolve_precision
from shopgen.text.prompt import END, NULL, PAD, PromptFormat, marker
from shopgen.text.tokenizer import control_token_ids, load_base_tokenizer, train_tokenizer
from shopgen.text.train import Seq, TrainStats, train_lm

STATE_FILE = "shopgen_text.json"
GUARD_FILE = "copy_guard.npz"
COPY_REDRAWS = 3
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


class TextModel:
    """Fit on a catalog, then `generate(rows)` returns the text columns for those rows."""

    def __init__(
        self,
        preset: TextPreset,
        base: str | None = None,
        max_seconds: float | None = None,
        max_epochs: int | None = None,
        seed: int = 0,
        sampling: SamplingConfig | None = None,
        precision: str = "fp32",
    ) -> None:
        self.preset = preset
        self.base = base
        self.max_seconds = max_seconds
        self.max_epochs = max_epochs
        self.seed = seed
        self.sampling = sampling or SamplingConfig(precision="auto")
        self.precision = precision

    # ---- fit -----------------------------------------------------------------------------------
    def fit(self, schema: CatalogSchema, df: pd.DataFrame, show_progress: bool = True) -> TextModel:
        self.__dict__.pop("banned_ids", None)  # derived from the tokenizer this fit replaces
        self.format_ = PromptFormat.fit(schema, df)
        columns = self.format_.text_columns
        prompts = self.format_.prompts(df)
        # cut to the schema's max_length first: one 10 MB cell would otherwise hold the tokenizer's training for
        # minutes, outside any time budget, for text the model may never write
        limit = {c: int(schema.column(c).max_length) for c in columns}
        texts = {c: [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)[:limit[c]] for v in df[c]]
                 for c in columns}
        if self.base:
            self.tokenizer_ = load_base_tokenizer(self.base, self.format_.special_tokens)
            base = _load_causal_lm(self.base)
            base.resize_token_embeddings(len(self.tokenizer_))
            base.config.pad_token_id = self.tokenizer_.convert_tokens_to_ids(PAD)
            positions = getattr(base.config, "n_positions", None) or getattr(base.config, "max_position_embeddings", 1024)
            block = min(self.preset.block_size, positions)
            self.model_ = _as_gpt(base)
        else:
            corpus = [t for col in texts.values() for t in col if t] + prompts
            self.tokenizer_ = train_tokenizer(corpus, self.preset.vocab_size, self.format_.special_tokens)
            block = self.preset.block_size
            self.model_ = GPT(_gpt_config(self.preset, self.tokenizer_, block))
        self.nullable_ = {c: schema.column(c).nullable for c in columns}
        self.max_length_ = limit
        prompt_ids = self.encode(prompts)
        text_ids = {c: self.encode([t or "" for t in texts[c]]) for c in columns}
        self.caps_ = _field_caps(prompt_ids, text_ids, block)
        text_ids = {c: self.trim(texts[c], text_ids[c], self.caps_[c] - 1) for c in columns}
        self.field_weights_ = _field_weights(text_ids, self.preset.field_balance)
        seqs = self.sequences(prompt_ids, texts, text_ids)
        self.unconditional_share_ = self.preset.unconditional_share
        if not self.unconditional_share_:  # nothing to guide against: its own default is no guidance
            self.sampling = dataclasses.replace(self.sampling, guidance=0.0)
        empty = [self.empty_prompt_ids()] * len(prompts)
        self.guards_ = {c: CopyGuard.from_texts(texts[c], BOILERPLATE_SHARE) for c in columns}
        self.stats_ = train_lm(
            self.model_, seqs,
            pad_id=self.token_id(PAD),
            batch_size=self.preset.batch_size,
            learning_rate=self.preset.learning_rate if not self.base else self.preset.learning_rate / 4,
            max_epochs=self.max_epochs or self.preset.max_epochs,
            max_seconds=self.max_seconds if self.max_seconds is not None else self.preset.max_seconds,
            seed=self.seed,
            show_progress=show_progress,
            alternates=self.sequences(empty, texts, text_ids) if self.unconditional_share_ else None,
            alternate_share=self.unconditional_share_,
            lead_tails=[len(ids) - lead_length(ids, self.token_id(END), self.preset.lead_next_tokens) for ids, _, _ in seqs],
            lead_repeats=rare_lead_repeats(schema, df, self.format_.conditions, self.preset) if len(columns) > 1 else 0,
            precision=resolve_precision(self.precision),
        )
        return self

    def token_id(self, token: str) -> int:
        return int(self.tokenizer_.convert_tokens_to_ids(token))

    def empty_prompt_ids(self) -> list[int]:
        return self.encode([self.format_.empty_prompt()])[0]

    def encode(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer_(texts, add_special_tokens=False)["input_ids"] if texts else []

    def trim(self, texts: list[str | None], ids: list[list[int]], limit: int) -> list[list[int]]:
        """Cut texts over `limit` tokens at their last sentence end inside it, so the model learns to finish."""
        long = [i for i, x in enumerate(ids) if len(x) > limit]
        if not long:
            return ids
        enc = self.tokenizer_([texts[i] for i in long], add_special_tokens=False, return_offsets_mapping=True)
        cuts = []
        for offsets, i in zip(enc["offset_mapping"], long):
            text = texts[i][: offsets[limit - 1][1]]
            ends = [m.end() for m in _SENTENCE_END.finditer(text)]
            if ends and ends[-1] >= len(text) // 2:
                text = text[: ends[-1]]
            cuts.append(text)
        out = list(ids)
        for i, x in zip(long, self.encode(cuts)):
            out[i] = x[:limit]
        return out

    def sequences(self, prompt_ids: list[list[int]], texts: dict, text_ids: dict) -> list[Seq]:
        """(ids, labels, label weights) per row: prompt, then each field's marker, text and end token."""
        end, null = self.token_id(END), self.token_id(NULL)
        seqs = []
        for r, prompt in enumerate(prompt_ids):
            ids, labels, weights = list(prompt), [IGNORE] * len(prompt), [0.0] * len(prompt)
            for c in self.format_.text_columns:
                body = [null] if texts[c][r] is None else text_ids[c][r]
                ids += [self.token_id(marker(c)), *body, end]
                labels += [IGNORE, *body, end]
                weights += [0.0] + [self.field_weights_[c]] * (len(body) + 1)
            seqs.append((ids, labels, weights))
        return seqs

    # ---- generate ------------------------------------------------------------------------------
    def generate(
        self, rows: pd.DataFrame, seed: int, allow_copies: bool = False, show_progress: bool = True,
        sampling: SamplingConfig | None = None,
    ) -> tuple[pd.DataFrame, pd.Series, int]:
        """Text for each row; also which rows still copy a training text after redraws, and how many were redrawn."""
        gen = torch.Generator().manual_seed(seed)
        prompts = self.encode(self.format_.prompts(rows))
        columns = self.format_.text_columns
        out = pd.DataFrame(index=rows.index, columns=columns, dtype=object)
        todo = np.arange(len(rows))
        copied = np.zeros(len(rows), dtype=bool)
        redrawn = 0
        with progress_bar(show_progress) as bar:
            task = bar.add_task("write text", total=len(rows), info="")
            for attempt in range(COPY_REDRAWS + 1):
                texts = self._generate_texts([prompts[i] for i in todo], gen, sampling or self.sampling,
                                             lambda n: bar.advance(task, n))
                for c in columns:
                    out.iloc[todo, out.columns.get_loc(c)] = texts[c]
                if allow_copies:
                    break
                copied[:] = False
                for c in columns:
                    copied[todo] |= self.guards_[c].flags(texts[c])
                todo = np.flatnonzero(copied)
                if not len(todo) or attempt == COPY_REDRAWS:
                    break
                redrawn += len(todo)
                bar.update(task, total=bar.tasks[task].total + len(todo), info=f"{redrawn} copies redrawn")
        return out, pd.Series(copied, index=rows.index), redrawn

    def field_specs(self) -> list[FieldSpec]:
        """Each text field's marker, token cap (end token included) and nullability, in order."""
        return [FieldSpec(self.token_id(marker(c)), self.caps_[c], self.nullable_[c]) for c in self.format_.text_columns]

    def sampling_precision(self, cfg: SamplingConfig) -> str:
        """The number type the sampler's weight matmuls run in under `cfg` on this machine: the one place
        "auto" is decided; fp32 for a model the slot decoder does not run (another architecture's `--text-base`)."""
        return resolve_precision(cfg.precision, SAMPLING_PRECISIONS) if isinstance(self.model_, GPT) else "fp32"

    def generate_tokens(self, prompts: list[list[int]], gen: torch.Generator, cfg: SamplingConfig,
                        on_batch=None) -> list[list[list[int]]]:
        """Token ids per row per text field for encoded condition prompts (what the benchmarks time)."""
        cfg = dataclasses.replace(cfg, precision=self.sampling_precision(cfg))
        if cfg.guidance > 0 and not self.unconditional_share_:
            raise ShopgenError("this text model was trained without unconditional rows, so it cannot sample "
                               "with guidance; sample with guidance 0 or refit it")
        return generate_sharded(
            self.model_, prompts, self.field_specs(),
            end_id=self.token_id(END), pad_id=self.token_id(PAD), null_id=self.token_id(NULL), banned_ids=self.banned_ids,
            cfg=cfg, generator=gen, on_batch=on_batch, empty_prompt=self.empty_prompt_ids(),
        )

    @functools.cached_property
    def banned_ids(self) -> list[int]:
        """Tokens the sampler never draws: padding, the field markers and control characters; derived from the
        fitted tokenizer once, not per generate call (a redraw round is one)."""
        markers = [self.token_id(marker(c)) for c in self.format_.conditions + self.format_.text_columns]
        return [self.token_id(PAD), *markers, *control_token_ids(self.tokenizer_)]

    def _generate_texts(self, prompts: list[list[int]], gen: torch.Generator, cfg: SamplingConfig, on_batch) -> dict[str, list]:
        columns = self.format_.text_columns
        tokens = self.generate_tokens(prompts, gen, cfg, on_batch)
        null = self.token_id(NULL)
        result = {}
        for f, c in enumerate(columns):
            per_row = [row[f] for row in tokens]
            decoded = self.tokenizer_.batch_decode(per_row, skip_special_tokens=True)
            result[c] = [
                None if ids[:1] == [null] else _clip(text, self.max_length_[c])
                for ids, text in zip(per_row, decoded)
            ]
        return result

    # ---- persistence ---------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> None:
        directory = Path(directory)
        self.model_.save_pretrained(directory)
        self.tokenizer_.save_pretrained(directory)
        state = {
            "format": self.format_.to_dict(), "caps": self.caps_, "nullable": self.nullable_,
            "max_length": self.max_length_, "stats": self.stats_.to_dict(), "base": self.base,
            "sampling": vars(self.sampling), "unconditional_share": self.unconditional_share_,
        }
        (directory / STATE_FILE).write_text(json.dumps(state, indent=2))
        arrays = {}
        for i, c in enumerate(self.format_.text_columns):
            arrays[f"exact_{i}"], arrays[f"spans_{i}"] = self.guards_[c].to_arrays()
        np.savez(directory / GUARD_FILE, **arrays)

    @classmethod
    def from_pretrained(cls, directory: str | Path, preset: TextPreset) -> TextModel:
        directory = Path(directory)
        state = json.loads((directory / STATE_FILE).read_text())
        # models saved before guidance existed had no unconditional rows: they sample without it
        self = cls(preset, base=state["base"], sampling=SamplingConfig(**{"guidance": 0.0, **state["sampling"]}))
        self.format_ = PromptFormat.from_dict(state["format"])
        self.caps_, self.nullable_, self.max_length_ = state["caps"], state["nullable"], state["max_length"]
        self.stats_ = TrainStats(**state["stats"])
        self.unconditional_share_ = state.get("unconditional_share", 0.0)  # format-2 models before it
        self.tokenizer_ = PreTrainedTokenizerFast.from_pretrained(str(directory), local_files_only=True)
        self.model_ = _as_gpt(_load_causal_lm(directory))
        with np.load(directory / GUARD_FILE) as arrays:
            self.guards_ = {
                c: CopyGuard(arrays[f"exact_{i}"].tolist(), arrays[f"spans_{i}"].tolist())
                for i, c in enumerate(self.format_.text_columns)
            }
        return self


def _gpt_config(p: TextPreset, tokenizer: PreTrainedTokenizerFast, block: int) -> GPTConfig:
    return GPTConfig(
        vocab_size=len(tokenizer), block_size=block, n_layer=p.n_layer, n_head=p.n_head, n_embd=p.n_embd,
        dropout=p.dropout, end_id=tokenizer.convert_tokens_to_ids(END), pad_id=tokenizer.convert_tokens_to_ids(PAD),
    )


def _load_causal_lm(path: str | Path) -> torch.nn.Module:
    try:
        return AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise ShopgenError(f"{str(path)!r} is not a loadable local causal-LM checkpoint ({exc}); give a save_pretrained directory") from None


def _as_gpt(model: torch.nn.Module) -> torch.nn.Module:
    """GPT-2 checkpoints (the bundle's own, or a GPT-2 `--text-base`) as this package's GPT, which trains with the
    fused loss and samples through the slot decoder; any other architecture stays Hugging Face's model."""
    return GPT.from_hf(model) if GPTConfig.from_hf(model.config) is not None else model


def _field_caps(prompt_ids: list[list[int]], text_ids: dict[str, list[list[int]]], block: int) -> dict[str, int]:
    """Token cap per text field (its end token included), sharing the context left after the prompt."""
    room = block - max((len(p) for p in prompt_ids), default=0) - len(text_ids)
    want = {c: int(np.percentile([len(x) for x in ids], 99)) + 2 for c, ids in text_ids.items()}
    if room < 4 * len(want):
        raise ShopgenError(
            f"the text model's context ({block} tokens) leaves {room} for {len(want)} text columns after the "
            "conditions; use a larger preset or condition on fewer columns"
        )
    caps, left = {}, room
    for i, (c, w) in enumerate(sorted(want.items(), key=lambda kv: kv[1])):
        caps[c] = max(2, min(w, left // (len(want) - i)))
        left -= caps[c]
    return {c: caps[c] for c in text_ids}


def _field_weights(text_ids: dict[str, list[list[int]]], balance: float) -> dict[str, float]:
    """Loss weight of each text field's tokens: (mean length) ** -balance, scaled to a mean of 1 per token.

    With a plain token mean, dmart's 9-token names (end token included) get about 6 % of the loss weight
    beside ~142-token trimmed descriptions, yet the name is what says which product a row is; at 0.5 they
    get about 20 % (computed from those lengths). Balance 0 is the plain mean, 1 weighs fields equally.
    """
    sizes = {c: float(np.mean([len(x) + 1 for x in ids])) for c, ids in text_ids.items()}
    raw = {c: n ** -balance for c, n in sizes.items()}
    scale = sum(sizes.values()) / sum(sizes[c] * raw[c] for c in sizes)
    return {c: raw[c] * scale for c in sizes}


def rare_lead_repeats(schema: CatalogSchema, df: pd.DataFrame, conditions: list[str], preset: TextPreset) -> list[int]:
    """Lead passes per row: the preset's count, raised for rows whose condition levels are rare.

    A row's rarity is the inverse geometric mean of its categorical conditions' level shares, over the
    median row's; rows rarer than the median get `lead_repeats` x min(rarity, 1 + rare_lead_boost)
    passes. The first text field is what says what a product is, and rows of rare levels had too few
    passes to learn it (docs/text-model.md: lead passes). Measured on dmart against the mean of each condition's
    (median share / own share), which gave rare categories more passes (School Supplies 12, not 8) and
    cost descriptions 11 % of their epochs: category consistency 0.78 against 0.82 (seed 0, one machine).
    """
    n = len(df)
    categorical = [c for c in conditions if schema.column(c).type == "categorical"]
    if not preset.lead_repeats or not preset.rare_lead_boost or not categorical or not n:
        return [preset.lead_repeats] * n
    log_share = np.zeros(n)
    for c in categorical:
        levels = df[c].astype(str)
        log_share += np.log(levels.map(levels.value_counts(normalize=True)).to_numpy(float))
    rarity = np.exp(-log_share / len(categorical))
    boost = np.clip(rarity / np.median(rarity), 1.0, 1.0 + preset.rare_lead_boost)
    return np.rint(preset.lead_repeats * boost).astype(int).tolist()


def lead_length(ids: list[int], end_id: int, next_tokens: int = 0) -> int:
    """Tokens up to and including the first text field's end token, then the next field's marker and up
    to `next_tokens` of its tokens (its end token included when it comes sooner)."""
    first = ids.index(end_id) + 1
    if not next_tokens:
        return first
    end = ids.index(end_id, first) + 1 if end_id in ids[first:] else len(ids)
    return min(first + 1 + next_tokens, end)


def _clip(text: str, max_length: int) -> str:
    """Trim to the schema's max length at a word boundary."""
    text = text.strip()
    if len(text) <= max_length:
        return text
    cut = text[:max_length]
    space = cut.rfind(" ")
    return (cut[:space] if space > max_length // 2 else cut).rstrip()
