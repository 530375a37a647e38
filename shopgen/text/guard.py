"""Privacy guard: remembers training texts as short hashes, so a bundle holds no raw training text."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

_NON_WORD = re.compile(r"\W+")


def normalise(text: str) -> str:
    """Case, punctuation and spacing removed: 'Acme  Shoe!' and 'acme shoe' are the same text."""
    return _NON_WORD.sub(" ", text.lower()).strip()


def _digest(text: str) -> str:
    return hashlib.blake2b(normalise(text).encode("utf-8"), digest_size=8).hexdigest()


class CopyGuard:
    """Tells whether a generated text equals, after normalisation, a training text of the same column."""

    def __init__(self, digests: Iterable[str] = ()) -> None:
        self.digests = set(digests)

    @classmethod
    def from_texts(cls, texts: Iterable[str | None]) -> CopyGuard:
        return cls(_digest(t) for t in texts if isinstance(t, str) and normalise(t))

    def copies(self, texts: Iterable[str | None]) -> list[bool]:
        return [isinstance(t, str) and bool(normalise(t)) and _digest(t) in self.digests for t in texts]

    def to_list(self) -> list[str]:
        return sorted(self.digests)
