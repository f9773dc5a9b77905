"""A Hugging Face model's own tokenizer (BPE, byte-level or SentencePiece-style) behind the
Tokenizer protocol, read with the `tokenizers` library from the model folder's files.

Files, in order of preference: `tokenizer.json` (any tokenizer the fast library saves), else
GPT-2's pair `vocab.json` + `merges.txt` (byte-level BPE). Nothing is downloaded and no code in
the folder is run.

Display strings make BPE tokens readable in a strip of cells: a space shows as "␣" (GPT-2 puts
the space before a word into the word's token: " Mary" is one token), a newline as "↵", a tab as
"⇥", other control characters as \\xNN, and a token that is only part of a UTF-8 character as
its bytes. The model's vocabulary may be larger than the tokenizer's (padded embeddings, as in
Pythia); ids the tokenizer lacks show as <id N>.
"""
from __future__ import annotations

from pathlib import Path

from engine.text.tokenizer import TokenizerInputError

TOKENIZER_JSON = "tokenizer.json"
VOCAB_JSON, MERGES_TXT = "vocab.json", "merges.txt"
_MARKS = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"}


def tokenizer_files(folder: Path) -> list[Path] | None:
    """The tokenizer files a folder holds, or None when it has none the studio reads."""
    folder = Path(folder)
    if (folder / TOKENIZER_JSON).is_file():
        return [folder / TOKENIZER_JSON]
    if (folder / VOCAB_JSON).is_file() and (folder / MERGES_TXT).is_file():
        return [folder / VOCAB_JSON, folder / MERGES_TXT]
    return None


def shown(text: str) -> str:
    """A token's text with whitespace and control characters made visible."""
    out = []
    for ch in text:
        if ch in _MARKS:
            out.append(_MARKS[ch])
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return "".join(out) or "∅"


class HFTokenizer:
    """Token ids <-> text through a `tokenizers.Tokenizer`; fills engine.text.Tokenizer."""

    def __init__(self, backend, vocab_size: int, special_ids: frozenset[int], source: Path):
        self.backend = backend  # tokenizers.Tokenizer
        self._vocab_size = int(vocab_size)  # the model's: its embedding rows
        self._special = frozenset(i for i in special_ids if i is not None)
        self.source = Path(source)
        self._strings: list[str] | None = None
        self._by_text: dict[str, int] | None = None

    @classmethod
    def from_folder(cls, folder: Path, vocab_size: int, special_ids=()) -> HFTokenizer:
        """The folder's tokenizer; TokenizerInputError (one line, naming the file) when it has none
        or cannot be read."""
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers

        files = tokenizer_files(folder)
        if files is None:
            raise TokenizerInputError(f"{folder}: no tokenizer (expected {TOKENIZER_JSON}, or {VOCAB_JSON} "
                                      f"and {MERGES_TXT})")
        try:
            if files[0].name == TOKENIZER_JSON:
                backend = Tokenizer.from_file(str(files[0]))
            else:  # GPT-2's original pair: byte-level BPE
                backend = Tokenizer(models.BPE.from_file(str(files[0]), str(files[1])))
                backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
                backend.decoder = decoders.ByteLevel()
        except Exception as e:  # noqa: BLE001 - the library's errors are many; all mean "unreadable"
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
            raise TokenizerInputError(f"{files[0]}: not a readable tokenizer ({first})") from None
        return cls(backend, vocab_size, frozenset(special_ids), files[0])

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    @property
    def special_ids(self) -> frozenset[int]:
        return self._special

    def encode(self, text: str) -> list[int]:
        return self._checked(self.backend.encode(text, add_special_tokens=False).ids)

    def encode_many(self, texts: list[str]) -> list[list[int]]:
        """encode for many texts in one call (the tokenizer's own batch: about 1.4x faster at 50k)."""
        return [self._checked(e.ids) for e in self.backend.encode_batch(texts, add_special_tokens=False)]

    def _checked(self, ids: list[int]) -> list[int]:
        bad = [i for i in ids if i >= self._vocab_size]
        if bad:
            raise TokenizerInputError(f"the tokenizer gives id {bad[0]}, beyond the model's {self._vocab_size} "
                                      "embedding rows; the tokenizer does not belong to this model")
        return ids

    def decode(self, ids) -> str:
        return self.backend.decode([int(i) for i in ids], skip_special_tokens=False)

    def token_strings(self, ids) -> list[str]:
        if self._strings is not None:
            return [self._strings[int(i)] for i in ids]
        # a query's few tokens: decoded one by one, without building the whole table (50k ids take
        # 0.1 s, which the GUI thread should not pay to show a token strip)
        known = self._known()
        return [self._display(int(i), self.backend.decode([int(i)], skip_special_tokens=False))
                if int(i) < known else f"<id {int(i)}>" for i in ids]

    def strings(self) -> list[str]:
        """The display string of every id (computed once: 50k ids take about 0.1 s; the app's
        engine thread computes it while loading the model)."""
        if self._strings is None:
            known = self._known()
            texts = self.backend.decode_batch([[i] for i in range(known)], skip_special_tokens=False)
            strings = [self._display(i, text) for i, text in enumerate(texts)]
            strings += [f"<id {i}>" for i in range(known, self._vocab_size)]
            self._strings = strings
        return self._strings

    def _known(self) -> int:
        """Ids the tokenizer has a text for; the model's rows beyond them are shown as <id N>."""
        return min(self._vocab_size, self.backend.get_vocab_size(with_added_tokens=True))

    def _display(self, i: int, text: str) -> str:
        raw = self.backend.id_to_token(i) or ""
        if raw.startswith("▁") and not text.startswith(" "):  # SentencePiece: the word-start mark
            text = " " + text
        if text == "�" and raw:  # part of a multi-byte character: show the piece itself
            text = raw
        return shown(text)

    def token_id(self, text: str) -> int | None:
        """The id of a token given as shown (␣Mary), as written (" Mary") or raw (ĠMary)."""
        if self._by_text is None:
            by_text: dict[str, int] = {}
            for i, s in enumerate(self.strings()):
                by_text.setdefault(s, i)
            self._by_text = by_text
        for candidate in (text, shown(text)):
            if candidate in self._by_text:
                return self._by_text[candidate]
        raw = self.backend.token_to_id(text)
        return raw if raw is not None and raw < self._vocab_size else None

    def describe(self) -> str:
        return f"this model's {self._vocab_size:,}-token vocabulary ({self.source.name})"


def train_byte_level_bpe(texts, vocab_size: int, bos: str = "<|endoftext|>"):
    """A byte-level BPE tokenizer of GPT-2's kind (a word's leading space in its token), trained
    on `texts` with `bos` as its one special token: how models built here get their tokenizers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(list(texts), trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[bos],
                                                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                             show_progress=False))
    return tok
