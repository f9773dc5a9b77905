"""A decoder's text corpus: plain text and JSON Lines read with blank lines skipped and leading
spaces kept, bad files reported by line in one message, texts cut into windows that add back up
to the text, a held-out split by content, and the BOS/ids/EOS/PAD grid."""
import json
import random

import numpy as np
import pytest

from engine.tasks import TaskInputError
from engine.text.corpus import CorpusError, corpus_windows, read_corpus, split_windows, window_grid


def _ords(text):
    return [ord(c) for c in text]


def test_a_plain_file_skips_blank_lines_and_keeps_leading_spaces(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes(b"first text\n\n   \n  indented text\r\n\t\nlast, no newline")
    assert read_corpus(path) == ["first text", "  indented text", "last, no newline"]


def test_json_lines_by_suffix_keeps_newlines_inside_a_text(tmp_path):
    path = tmp_path / "corpus.jsonl"
    lines = [json.dumps({"text": "two\nlines", "id": 1}), "", "  ", json.dumps({"text": " spaced"})]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert read_corpus(path) == ["two\nlines", " spaced"]


def test_json_lines_are_sniffed_from_the_first_non_blank_line(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("\n" + json.dumps({"text": "a\nb"}) + "\n" + json.dumps({"text": "ü"}) + "\n", encoding="utf-8")
    assert read_corpus(path) == ["a\nb", "ü"]
    # a line that merely starts with "{" is plain text
    path.write_text("{not json}\n{\"text\": 1}\n", encoding="utf-8")
    assert read_corpus(path) == ["{not json}", '{"text": 1}']


def test_non_utf8_bytes_name_the_line_and_the_byte(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes(b"fine\nalso fine\nbad \xff here\n")
    with pytest.raises(CorpusError) as caught:
        read_corpus(path)
    message = str(caught.value)
    assert "line 3" in message and "0xff" in message and "column 5" in message and str(path) in message
    assert "\n" not in message


def test_a_missing_file_and_a_folder_name_the_path(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(CorpusError, match="no such corpus file") as caught:
        read_corpus(missing)
    assert str(missing) in str(caught.value) and "JSON Lines" in str(caught.value)
    with pytest.raises(CorpusError, match="folder") as caught:
        read_corpus(tmp_path)
    assert str(tmp_path) in str(caught.value)
    assert issubclass(CorpusError, TaskInputError)  # the CLI reports it as bad input, not a crash


@pytest.mark.parametrize("bad", ["not json", json.dumps({"txt": "x"}), json.dumps({"text": 3}), json.dumps(["x"]),
                                 '{"text": "x", "n": ' + "9" * 5000 + "}",  # json.loads: ValueError
                                 '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"])  # json.loads: RecursionError
def test_a_bad_json_lines_line_is_named(tmp_path, bad):
    path = tmp_path / "corpus.ndjson"
    path.write_text(json.dumps({"text": "ok"}) + "\n\n" + bad + "\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r'line 3: expected a JSON object with a "text" string'):
        read_corpus(path)


@pytest.mark.parametrize("content", [b"", b"\n  \n\t\n", b'{"text": ""}\n{"text": "  "}\n'])
def test_an_empty_corpus_is_refused(tmp_path, content):
    path = tmp_path / "corpus.jsonl"
    path.write_bytes(content)
    with pytest.raises(CorpusError, match="the corpus holds no text"):
        read_corpus(path)


def test_a_long_text_is_cut_into_windows_that_add_back_up():
    long_text = "".join(chr(ord("a") + i % 26) for i in range(23))
    windows = [w.tolist() for w in corpus_windows(["short", "", long_text], _ords, length=5)]
    assert windows[0] == _ords("short")  # fits: one window
    rest = windows[1:]
    assert [len(w) for w in rest] == [5, 5, 5, 5, 3]  # the empty text gave nothing; the tail is kept
    assert [i for w in rest for i in w] == _ords(long_text)
    assert [w.tolist() for w in corpus_windows(["abcde"], _ords, length=5)] == [_ords("abcde")]
    with pytest.raises(ValueError, match="at least 1"):
        corpus_windows(["abc"], _ords, length=0)


def test_the_split_is_by_content_disjoint_and_covers_every_window():
    windows = [[i, i * 7 % 11, 3] for i in range(400)]
    train, test = split_windows(windows, test_share=0.1, seed=0)
    assert len(train) + len(test) == len(windows)
    assert {tuple(w) for w in train}.isdisjoint(tuple(w) for w in test)
    assert sorted(train + test) == sorted(windows)
    assert 10 <= len(test) <= 80  # about a tenth
    shuffled = windows[:]
    random.Random(1).shuffle(shuffled)
    _, test_again = split_windows(shuffled, test_share=0.1, seed=0)
    assert sorted(test_again) == sorted(test)  # the order of the corpus does not matter
    _, other_seed = split_windows(windows, test_share=0.1, seed=1)
    assert sorted(other_seed) != sorted(test)


def test_both_sides_get_a_window():
    for share in (0.001, 0.999):
        train, test = split_windows([[1], [2], [3]], test_share=share)
        assert train and test and len(train) + len(test) == 3
    assert split_windows([[1]], test_share=0.5)[0] + split_windows([[1]], test_share=0.5)[1] == [[1]]
    with pytest.raises(ValueError):
        split_windows([[1], [2]], test_share=1.0)


def test_the_grid_is_bos_ids_eos_then_pad():
    grid = window_grid([[5, 6, 7], [8]], n_ctx=6, bos_id=1, eos_id=2, pad_id=0)
    assert grid.dtype == np.int64 and grid.shape == (2, 6)
    assert grid.tolist() == [[1, 5, 6, 7, 2, 0], [1, 8, 2, 0, 0, 0]]
    no_bos = window_grid([[5, 6, 7, 8, 9]], n_ctx=6, bos_id=None, eos_id=2, pad_id=0)
    assert no_bos.tolist() == [[5, 6, 7, 8, 9, 2]]  # exactly full without BOS
    windows = corpus_windows(["x" * 20], _ords, length=6 - 2)
    assert window_grid(windows, n_ctx=6, bos_id=1, eos_id=2, pad_id=0).shape == (5, 6)
    with pytest.raises(ValueError, match="5 tokens.*7 positions.*n_ctx is 6"):
        window_grid([[1, 2], [5, 6, 7, 8, 9]], n_ctx=6, bos_id=1, eos_id=2, pad_id=0)


def test_a_lone_surrogate_is_named_by_its_line(tmp_path):
    """json.loads takes an unpaired "\\udc80" escape; the tokenizer would fail on it later, with a TypeError."""
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"text": "ok"}\n{"text": "a\\udc80b"}\n', encoding="utf-8")
    with pytest.raises(CorpusError, match="line 2: the text holds a lone surrogate"):
        read_corpus(path)
