"""The engine protocol's framing: one message is a JSON header followed by raw array buffers.

    frame := length (4 bytes, big-endian) | header (UTF-8 JSON, `length` bytes) | buffer 0 | buffer 1 ...

The header is a JSON object; its "$buffers" entry lists each buffer's byte length, and values in it
refer to buffers by index (engine/server/codec.py). Reading a frame never runs code: JSON and raw
numeric bytes only, no pickle, since the other end may be another machine (an engine over SSH).
Frames are bounded (MAX_HEADER, MAX_BUFFER) so a garbled stream fails with a WireError rather
than an attempt to allocate gigabytes.
"""
from __future__ import annotations

import json
import struct
import threading
from typing import BinaryIO

PROTOCOL = 1  # bumped whenever a message changes shape; the window refuses another engine's
MAX_HEADER = 256 << 20  # bytes of JSON in one message (a 768-sample query result is about 0.5 MB)
MAX_BUFFER = 4 << 30  # bytes in one array buffer
_LENGTH = struct.Struct(">I")


class WireError(Exception):
    """The stream is not a well-formed protocol message (or it ended inside one)."""


def _read_exact(stream: BinaryIO, n: int) -> bytes | None:
    """n bytes, or None at a clean end of stream before the first byte."""
    parts, got = [], 0
    while got < n:
        part = stream.read(n - got)
        if not part:
            if got == 0:
                return None
            raise WireError(f"the stream ended inside a message ({got} of {n} bytes)")
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def read_frame(stream: BinaryIO) -> tuple[dict, list[bytes]] | None:
    """The next message as (header, buffers); None when the stream has ended between messages."""
    head = _read_exact(stream, 4)
    if head is None:
        return None
    (length,) = _LENGTH.unpack(head)
    if length > MAX_HEADER:
        raise WireError(f"a message header of {length:,} bytes (at most {MAX_HEADER:,}): not this protocol")
    raw = _read_exact(stream, length)
    if raw is None:
        raise WireError("the stream ended inside a message header")
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise WireError(f"a message header is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise WireError("a message header is not a JSON object")
    sizes = header.pop("$buffers", [])
    if not isinstance(sizes, list) or not all(isinstance(s, int) and 0 <= s <= MAX_BUFFER for s in sizes):
        raise WireError("a message lists bad buffer sizes")
    buffers = []
    for size in sizes:
        data = _read_exact(stream, size) if size else b""
        if data is None:
            raise WireError("the stream ended inside a message buffer")
        buffers.append(data)
    return header, buffers


class FrameWriter:
    """Writes whole frames; safe to call from several threads (one frame at a time)."""

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self._lock = threading.Lock()

    def write(self, header: dict, buffers: list = ()) -> None:
        """Raises OSError (BrokenPipeError) when the other end has gone."""
        header = dict(header, **({"$buffers": [memoryview(b).nbytes for b in buffers]} if buffers else {}))
        raw = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        with self._lock:
            self._stream.write(_LENGTH.pack(len(raw)))
            self._stream.write(raw)
            for b in buffers:
                self._stream.write(memoryview(b).cast("B"))
            self._stream.flush()
