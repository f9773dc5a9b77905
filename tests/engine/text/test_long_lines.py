"""A corpus line of any length reaches the tokenizer in pieces (#31 item 11): a 500 MB line asked
the tokenizers library for 8 GiB and aborted the process (exit 134)."""
import random

from engine.text.corpus import PIECE_CHARS, corpus_windows, text_pieces
from tests.engine.helpers import train_tokenizer


def _words(n_chars: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    words = "the quick brown fox jumps over lazy dog when mary and john went to store".split()
    text = " ".join(rng.choice(words) for _ in range(n_chars // 3))
    return text[:n_chars]


def test_pieces_add_back_up_and_are_cut_before_a_space():
    text = _words(10_000)
    pieces = list(text_pieces(text, most=1000))
    assert "".join(pieces) == text
    assert all(len(p) <= 1000 for p in pieces) and len(pieces) >= 10
    assert all(p.startswith(" ") for p in pieces[1:])  # the space goes with the next word
    assert all(len(p) > 500 for p in pieces[:-1])  # cut in the second half of a piece
    # no space at all: cut at the limit; a short text is itself
    assert [len(p) for p in text_pieces("x" * 2500, most=1000)] == [1000, 1000, 500]
    assert list(text_pieces("short", most=1000)) == ["short"]
    assert list(text_pieces("", most=1000)) == [""]


def test_the_tokenizer_never_gets_more_than_a_piece():
    seen = []

    def encode(text):
        seen.append(len(text))
        return [ord(c) for c in text]

    line = _words(5 * PIECE_CHARS + 123)
    windows = corpus_windows(["a short one", line], encode, length=38)
    assert max(seen) <= PIECE_CHARS and len(seen) >= 6
    ids = [i for w in windows[1:] for i in w.tolist()]
    assert ids == [ord(c) for c in line]  # nothing lost or doubled at the cuts
    assert all(w.dtype.itemsize == 4 for w in windows)  # 4 bytes an id, not a Python int's 28+


def test_cutting_before_a_space_keeps_a_byte_level_bpes_ids():
    tok = train_tokenizer()
    line = _words(3 * PIECE_CHARS)

    def encode(text):
        return tok.encode(text).ids

    whole = encode(line)
    pieces = [i for piece in text_pieces(line) for i in encode(piece)]
    assert pieces == whole  # GPT-2's pre-tokenizer never merges across " word": the same ids
