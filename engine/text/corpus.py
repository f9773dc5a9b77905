"""A text corpus for training a text model's decoder: read from a file, cut into token windows.

`train-decoder --model M --corpus FILE` reads FILE here. Two formats: plain text, one text per
line, or JSON Lines, one object with a "text" string per line (the form most published corpora
come in; a JSON text may hold newlines, which a plain line cannot). Blank lines are skipped in
both. Nothing but the line ending is stripped: BPE puts the space before a word into the word's
token, so a leading space changes the ids.

Each text is encoded with the model's tokenizer and cut into windows short enough to fit the
decoder's context with BOS and EOS; a hash of each window's ids decides train or test, so a
window (and any duplicate of it) lands on the same side however the corpus is ordered.

A long text is encoded in pieces of at most PIECE_CHARS characters, cut before a space where
there is one: the tokenizers library holds about 16 bytes of bookkeeping per byte of a text it
encodes, so a 500 MB line asked it for 8 GiB and aborted the process (exit 134); a 6 MB line
took 1.7 GB. Only the windows that straddle a cut differ from the whole text's.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from engine.tasks.base import TaskInputError

JSONL_SUFFIXES = (".jsonl", ".ndjson")
_ALLOWED = 'give a plain-text file, one text per line, or JSON Lines with a "text" field'
_BOM = "\ufeff"


class CorpusError(TaskInputError):
    """A corpus file the studio cannot read; the one-line message names the file and what is allowed."""


def read_corpus(path) -> list[str]:
    """The texts of a corpus file, in file order, blank lines skipped.

    JSON Lines when the suffix says so, or when the first non-blank line is a JSON object with a
    "text" string; otherwise plain text. The file is read line by line as bytes, so a corpus of
    a few hundred MB is held once (as the texts), and a bad byte can be reported by line.
    """
    path = Path(path)
    if path.is_dir():
        raise CorpusError(f"{path}: is a folder, not a corpus file ({_ALLOWED})")
    if not path.is_file():
        raise CorpusError(f"{path}: no such corpus file ({_ALLOWED})")
    jsonl = path.suffix.lower() in JSONL_SUFFIXES
    sniffed = jsonl  # the suffix decides; else the first non-blank line does
    texts: list[str] = []
    try:
        with path.open("rb") as f:
            for number, line in _lines(path, f):
                if not line.strip():
                    continue
                if not sniffed:
                    sniffed = True
                    jsonl = line.lstrip().startswith("{") and _json_text(line) is not None
                if not jsonl:
                    texts.append(line)
                    continue
                text = _json_text(line)
                if text is None:
                    raise CorpusError(f'{path} line {number}: expected a JSON object with a "text" string')
                if not _encodable(text):  # the tokenizer refuses such a string, with a TypeError
                    raise CorpusError(f"{path} line {number}: the text holds a lone surrogate (an unpaired "
                                      "\\ud800-\\udfff escape), which is not text")
                if text.strip():  # an empty text would give no tokens and no window
                    texts.append(text)
    except OSError as e:
        raise CorpusError(f"{path}: cannot read the corpus file ({e.strerror or e})") from None
    if not texts:
        raise CorpusError(f"{path}: the corpus holds no text")
    return texts


def _lines(path: Path, f) -> Iterator[tuple[int, str]]:
    """(1-based line number, decoded line without its line ending) for each line of a binary file."""
    for number, raw in enumerate(f, start=1):
        if raw.endswith(b"\n"):
            raw = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise CorpusError(f"{path} line {number}: not UTF-8 text (byte 0x{raw[e.start]:02x} at column "
                              f"{e.start + 1}); save the corpus as UTF-8") from None
        if number == 1 and line.startswith(_BOM):
            line = line[1:]  # Windows editors mark UTF-8 files so; it is not part of the first text
        yield number, line


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _json_text(line: str) -> str | None:
    """The "text" string of a JSON Lines line, or None when the line is not such an object."""
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):  # ValueError: also an integer past 4,300 digits
        return None
    text = obj.get("text") if isinstance(obj, dict) else None
    return text if isinstance(text, str) else None


PIECE_CHARS = 1 << 16  # the most characters handed to the tokenizer at once


def text_pieces(text: str, most: int = PIECE_CHARS) -> Iterator[str]:
    """`text` in consecutive pieces of at most `most` characters that add back up to it, each cut
    just before a whitespace character in the second half of the piece when there is one (BPE puts
    a word's leading space into its token, so the space starts the next piece), else at `most`."""
    start = 0
    while len(text) - start > most:
        end = start + most
        cut = max(text.rfind(space, start + most // 2, end) for space in " \n\t")
        end = cut if cut > start else end
        yield text[start:end]
        start = end
    yield text[start:] if start else text


def corpus_windows(texts: list[str], encode: Callable[[str], list[int]], length: int,
                   piece: int = PIECE_CHARS) -> list[np.ndarray]:
    """Token windows of at most `length` ids, each an int32 array: a text that fits is one window,
    a longer one is cut into consecutive windows (the last may be shorter). `encode` gives content
    ids, no BOS; the caller adds BOS and EOS (window_grid), so length = n_ctx - 2 fits the context.
    A text longer than `piece` characters is encoded piece by piece (text_pieces), each piece cut
    into windows. The windows are views of one array per piece: 4 bytes an id, where a list of
    Python ints took about 40 (a 60 MB line: 1.25 GB of lists)."""
    if length < 1:
        raise ValueError(f"window length must be at least 1, got {length}")
    windows: list[np.ndarray] = []
    for text in texts:
        for part in text_pieces(text, piece):
            ids = np.asarray(encode(part), dtype=np.int64)
            if ids.size and (ids.min() < 0 or ids.max() > np.iinfo(np.int32).max):
                raise ValueError(f"token ids must be from 0 to {np.iinfo(np.int32).max}")
            ids = ids.astype(np.int32)
            # a text that encodes to nothing adds no window: range() is empty
            windows.extend(ids[start:start + length] for start in range(0, len(ids), length))
    return windows


def split_windows(windows: list[list[int]], test_share: float = 0.05,
                  seed: int = 0) -> tuple[list[list[int]], list[list[int]]]:
    """(train, test): about `test_share` of the windows held out, chosen by a hash of each window's
    ids and the seed, not by position, so the split does not depend on the corpus's order and a
    repeated window never sits on both sides. With 2 or more windows each side gets at least one
    (the window whose hash is nearest the cut moves over), so training always has a test score."""
    if not 0 < test_share < 1:
        raise ValueError(f"test_share must be between 0 and 1, got {test_share}")
    key = int(seed).to_bytes(16, "little", signed=True)
    scores = [_score(window, key) for window in windows]
    is_test = [score < test_share for score in scores]
    if len(windows) >= 2:
        if not any(is_test):
            is_test[min(range(len(scores)), key=scores.__getitem__)] = True
        elif all(is_test):
            is_test[max(range(len(scores)), key=scores.__getitem__)] = False
    train = [w for w, t in zip(windows, is_test) if not t]
    test = [w for w, t in zip(windows, is_test) if t]
    return train, test


def _score(window: list[int], key: bytes) -> float:
    """A window's place in [0, 1): its ids as little-endian int64 bytes, hashed with the seed's key
    (fixed byte order, so the split is the same on every machine)."""
    digest = hashlib.blake2b(np.asarray(window, dtype="<i8").tobytes(), digest_size=8, key=key).digest()
    return int.from_bytes(digest, "little") / 2 ** 64


def window_grid(windows: list[list[int]], n_ctx: int, bos_id: int | None, eos_id: int, pad_id: int) -> np.ndarray:
    """An (N, n_ctx) int64 grid, one row per window: [BOS] (when the model has one), the window's
    ids, EOS, then PAD to the end. The decoder learns where a sample ends from the EOS."""
    specials = 1 if bos_id is None else 2
    grid = np.full((len(windows), n_ctx), pad_id, dtype=np.int64)
    for row, window in enumerate(windows):
        if len(window) + specials > n_ctx:
            raise ValueError(f"window {row} has {len(window)} tokens; with {specials} special token(s) it needs "
                             f"{len(window) + specials} positions but n_ctx is {n_ctx} "
                             f"(cut windows to at most {n_ctx - specials} tokens)")
        start = 0
        if bos_id is not None:
            grid[row, 0] = bos_id
            start = 1
        grid[row, start:start + len(window)] = window
        grid[row, start + len(window)] = eos_id
    return grid
