"""How deeply a JSON text nests, and how many arrays and objects it opens, without parsing it.

A guard run before json.loads on a file someone else wrote: a deep or huge document costs a parser
(and Python's objects) far more memory than the file's bytes (engine/store/paper_json.py).
"""
from __future__ import annotations

import numpy as np

SCAN_CHUNK = 1 << 18  # bytes of a file the nesting scan looks at at once
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_MARKS = np.zeros(256, dtype=bool)
_MARKS[list(b'"[]{}')] = True
_STEP = np.zeros(256, dtype=np.int8)
_STEP[list(b"[{")], _STEP[list(b"]}")] = 1, -1


def nesting(data: bytes) -> tuple[int, int]:
    """(depth, containers): how deeply the JSON text nests arrays and objects and how many it
    opens, strings skipped, without parsing it. A scan of SCAN_CHUNK bytes at a time that keeps
    only where each chunk's quotes and brackets are: memory is a few times the chunk, not the
    file's (a regex that cut the strings out took 120 MB per MB of a long string; a 60 MB file,
    6 GiB). A quote after an odd run of backslashes is inside a string."""
    depth = deepest = containers = 0
    inside = False  # in a string at the chunk's start
    run = 0  # backslashes that end the bytes before the chunk
    view = memoryview(data)
    for at in range(0, len(data), SCAN_CHUNK):
        arr = np.frombuffer(view[at:at + SCAN_CHUNK], dtype=np.uint8)
        where = np.flatnonzero(_MARKS[arr])
        if len(where):
            marks = arr[where]
            quote = marks == _QUOTE
            if quote.any():
                # the run of backslashes before each quote: back to the last byte that is not one
                plain = np.flatnonzero(arr != _BACKSLASH)
                q_at = where[quote]
                before = np.searchsorted(plain, q_at) - 1
                last = np.where(before >= 0, plain[np.maximum(before, 0)], -1 - run)
                escaped = (q_at - 1 - last) % 2 == 1
                real = np.zeros(len(marks), dtype=bool)
                real[np.flatnonzero(quote)[~escaped]] = True
                # in a string: an odd number of real quotes so far (a quote itself is no bracket)
                open_strings = (np.cumsum(real) + inside) % 2 == 1
                inside = bool(open_strings[-1])
                steps = np.where(open_strings | quote, 0, _STEP[marks])
            else:
                steps = np.zeros(len(marks), dtype=np.int8) if inside else _STEP[marks]
            if len(steps):
                levels = depth + np.cumsum(steps, dtype=np.int64)
                deepest = max(deepest, int(levels.max()))
                depth = int(levels[-1])
                containers += int((steps > 0).sum())
        plain_tail = np.flatnonzero(arr != _BACKSLASH)
        run = len(arr) - 1 - int(plain_tail[-1]) if len(plain_tail) else run + len(arr)
    return deepest, containers
