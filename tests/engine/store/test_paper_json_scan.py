"""The paper-JSON nesting check scans in small memory (#31 item 11): the regex that cut strings out
took about 120 MB per MB of a long string (a 60 MB file under the 64 MB cap took 6.9 GB), and a
file of millions of empty arrays was parsed into millions of lists before it was refused."""
import json
import random
import tracemalloc

import pytest

from engine.errors import StoreError
from engine.store import json_scan, paper_json
from engine.store.json_scan import nesting as _nesting
from engine.store.paper_json import MAX_CONTAINERS, read_paper_json


def _truth(value) -> tuple[int, int]:
    """(depth, containers) of a parsed value."""
    if isinstance(value, (list, dict)):
        items = value.values() if isinstance(value, dict) else value
        inner = [_truth(v) for v in items]
        return 1 + max((d for d, _ in inner), default=0), 1 + sum(c for _, c in inner)
    return 0, 0


TRICKY = ['a', '[', ']', '{', '}', '"', '\\', '\\"', '\\\\', '\\\\"', '[{"', 'ü', '\u2028', '"]}']


def _random_value(rng: random.Random, depth: int):
    kind = rng.random()
    if depth > 5 or kind < 0.3:
        return "".join(rng.choice(TRICKY) for _ in range(rng.randint(0, 6)))
    if kind < 0.4:
        return rng.choice([0, 1.5, -3, None, True])
    if kind < 0.7:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {"".join(rng.choice(TRICKY) for _ in range(rng.randint(0, 3))) + str(i): _random_value(rng, depth + 1)
            for i in range(rng.randint(0, 4))}


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 1 << 20])
def test_the_scan_agrees_with_the_parsed_structure_at_any_chunk_size(monkeypatch, chunk):
    monkeypatch.setattr(json_scan, "SCAN_CHUNK", chunk)
    rng = random.Random(chunk)
    for _ in range(150):
        doc = _random_value(rng, 0)
        text = json.dumps(doc, ensure_ascii=rng.random() < 0.5, indent=rng.choice([None, 1]))
        assert _nesting(text.encode("utf-8")) == _truth(doc), text


def test_a_long_string_and_long_escapes_are_scanned_in_small_memory():
    for body in (b"a" * 8_000_000, b'\\"' * 4_000_000, b"[" * 8_000_000):
        data = b'{"query_input": ["' + body + b'"]}'
        tracemalloc.start()
        try:
            assert _nesting(data) == (2, 2)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 40 * 2**20, f"{peak / 2**20:.0f} MB to scan {len(data) / 2**20:.0f} MB"  # was 1,087 MB


def test_too_many_arrays_are_refused_before_parsing(tmp_path, monkeypatch):
    path = tmp_path / "arrays.json"
    n = MAX_CONTAINERS + 1
    path.write_bytes(b"[" + b"[]," * (n - 2) + b"[]]")

    def no_parse(*args, **kwargs):
        raise AssertionError("parsed")

    monkeypatch.setattr(paper_json.json, "loads", no_parse)
    with pytest.raises(StoreError) as caught:
        read_paper_json(path)
    message = str(caught.value)
    assert f"{n:,} arrays and objects, more than the {MAX_CONTAINERS:,}" in message and str(path) in message
    assert "\n" not in message
