"""What the engine asks of a tokenizer (a protocol: a character table and a Hugging Face
tokenizer can both fill it without a shared base class)."""
from __future__ import annotations

from typing import Protocol, runtime_checkable


class TokenizerInputError(ValueError):
    """Text the tokenizer cannot encode; the message says what is allowed."""


@runtime_checkable
class Tokenizer(Protocol):
    """Token ids <-> text. Special ids may coincide (GPT-2 uses one id for BOS, EOS and PAD),
    so callers compare positions, not just ids, where that matters."""

    @property
    def vocab_size(self) -> int: ...

    @property
    def special_ids(self) -> frozenset[int]:
        """Ids that mark structure (BOS, EOS, PAD), never content."""
        ...

    def encode(self, text: str) -> list[int]:
        """Token ids of `text` as written (no special tokens added)."""
        ...

    def decode(self, ids) -> str: ...

    def token_strings(self, ids) -> list[str]:
        """One display string per token id (a token may be several characters, or none)."""
        ...

    def strings(self) -> list[str]:
        """The display string of every id, indexed by id (the logit lens labels with these)."""
        ...

    def token_id(self, text: str) -> int | None:
        """The id whose token is exactly `text`, or None."""
        ...
