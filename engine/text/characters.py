"""One character per token: the synthetic tasks' tokenizer."""
from __future__ import annotations

from dataclasses import dataclass

from engine.text.tokenizer import TokenizerInputError


@dataclass(frozen=True)
class CharTokenizer:
    """Characters <-> token ids; chars[i] is the text of token id i. `specials` names the
    structural characters (BOS, EOS, PAD) so that `special_ids` can report them."""

    chars: str
    specials: str = ""

    def __post_init__(self) -> None:
        if len(set(self.chars)) != len(self.chars):
            raise ValueError("vocabulary characters must be distinct")
        missing = [c for c in self.specials if c not in self.chars]
        if missing:
            raise ValueError(f"special characters not in the vocabulary: {missing}")

    @property
    def size(self) -> int:
        return len(self.chars)

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    @property
    def special_ids(self) -> frozenset[int]:
        return frozenset(self.chars.index(c) for c in self.specials)

    def id_of(self, ch: str) -> int:
        return self.chars.index(ch)

    def encode(self, text: str) -> list[int]:
        bad = sorted({c for c in text if c not in self.chars})
        if bad:
            shown = ", ".join(repr(c) for c in bad)
            raise TokenizerInputError(f"characters not in the vocabulary: {shown}; allowed: {self.describe()}")
        return [self.chars.index(c) for c in text]

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def token_strings(self, ids) -> list[str]:
        return [self.chars[int(i)] for i in ids]

    def strings(self) -> list[str]:
        return list(self.chars)

    def token_id(self, text: str) -> int | None:
        return self.chars.index(text) if len(text) == 1 and text in self.chars else None

    def describe(self) -> str:
        return self.chars
