"""A byte-level BPE tokenizer fitted on the catalog's own text (about a second), or a local checkpoint's.

Byte-level means any character decodes back exactly (accents, "₹", HTML entities) with no unknown token.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from shopgen.errors import ShopgenError
from shopgen.text.prompt import END, PAD


def train_tokenizer(texts: Iterable[str], vocab_size: int, special_tokens: list[str]) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, eos_token=END)


def load_base_tokenizer(path: str | Path, special_tokens: list[str]) -> PreTrainedTokenizerBase:
    """A local checkpoint's tokenizer with our field markers added; never reaches a model hub."""
    try:
        tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ShopgenError(f"--text-base {str(path)!r} has no loadable tokenizer ({exc}); give a local Hugging Face checkpoint directory") from None
    tok.add_special_tokens({"pad_token": PAD, "eos_token": END, "additional_special_tokens": special_tokens})
    return tok


def control_token_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Tokens that decode to a control character other than newline and tab, for the sampler's ban list.

    The byte-level alphabet holds all 256 bytes whether the catalog used them or not, and a briefly trained
    model still gives them mass: one bare carriage return splits a csv row, a NUL cuts a field short.
    """
    pieces = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
    return [i for i, piece in enumerate(pieces)
            if any(ch not in "\n\t" and unicodedata.category(ch) == "Cc" for ch in piece)]
