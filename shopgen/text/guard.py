"""Privacy guard: remembers training texts as 64-bit hashes, so a bundle holds no raw training text.

A generated text copies training text when, after normalisation, it equals a training text, or it
shares an 8-word span with exactly one training text. Spans found in several training texts are the
catalog's boilerplate ("actual packaging may vary from the image"), not one product's words. At sample
time, whole texts that a share of the catalog's rows carry ("India" is the description of 12 % of
dmart) are boilerplate too: redrawing them would only drop the rows that typically carry them.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable

import numpy as np

SPAN_WORDS = 8
MAX_SPAN_TEXTS = 1
BOILERPLATE_SHARE = 0.01  # a whole text in >= 1 % of rows (and >= BOILERPLATE_MIN_ROWS) is a stock phrase
BOILERPLATE_MIN_ROWS = 5
_NON_WORD = re.compile(r"\W+")


def normalise(text: str) -> str:
    """Case, punctuation and spacing removed: 'Acme  Shoe!' and 'acme shoe' are the same text."""
    return _NON_WORD.sub(" ", text.lower()).strip()


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def _spans(words: list[str]) -> set[int]:
    return {_hash(" ".join(words[i:i + SPAN_WORDS])) for i in range(len(words) - SPAN_WORDS + 1)}


class CopyGuard:
    """Tells whether generated texts copy the training texts of one column."""

    def __init__(self, exact: Iterable[int] = (), spans: Iterable[int] = ()) -> None:
        self.exact = {int(h) for h in exact}
        self.spans = {int(h) for h in spans}

    @classmethod
    def from_texts(cls, texts: Iterable[object], boilerplate_share: float | None = None) -> CopyGuard:
        """Guard every training text, or with `boilerplate_share` all but the catalog's stock phrases."""
        exact, span_texts = Counter(), Counter()
        for text in texts:
            if not isinstance(text, str) or not (norm := normalise(text)):
                continue
            exact[_hash(norm)] += 1
            span_texts.update(_spans(norm.split()))
        limit = float("inf")
        if boilerplate_share is not None:
            limit = max(BOILERPLATE_MIN_ROWS, boilerplate_share * sum(exact.values()))
        return cls((h for h, k in exact.items() if k < limit), (h for h, k in span_texts.items() if k <= MAX_SPAN_TEXTS))

    def copies(self, texts: Iterable[object]) -> list[bool]:
        """Equal to a training text after normalisation."""
        return [isinstance(t, str) and bool(n := normalise(t)) and _hash(n) in self.exact for t in texts]

    def overlaps(self, texts: Iterable[object]) -> list[bool]:
        """Shares an 8-word span with exactly one training text."""
        return [isinstance(t, str) and not self.spans.isdisjoint(_spans(normalise(t).split())) for t in texts]

    def flags(self, texts: list[object]) -> np.ndarray:
        """Copies or overlaps, normalising each text once (this runs on every sampled batch)."""
        out = np.zeros(len(texts), dtype=bool)
        for i, text in enumerate(texts):
            if isinstance(text, str) and (norm := normalise(text)):
                out[i] = _hash(norm) in self.exact or not self.spans.isdisjoint(_spans(norm.split()))
        return out

    def to_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return (np.array(sorted(self.exact), dtype=np.uint64), np.array(sorted(self.spans), dtype=np.uint64))
