"""The engine process: `python -m engine.server` speaks the protocol on its standard input and output.

The window starts it (app/workers/engine_link.py), by default as this interpreter on this machine;
any command that runs it works, `ssh gpu-box /path/to/.venv/bin/python -m engine.server` included.
It answers "hello" (the protocol version) before importing torch, so the window can check it at
once; it exits when its input closes, so closing the window, or losing the SSH connection, ends it.
Its log goes to standard error, which the window keeps in a file.

    python -m engine.server [--beside-window]

--beside-window: the window shares this machine, so torch leaves one core to it.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
from typing import BinaryIO

from engine.server.codec import CodecError, decode, encode
from engine.server.wire import PROTOCOL, FrameWriter, WireError, read_frame

log = logging.getLogger(__name__)
SAVE_WAIT_S = 120.0  # how long a cancelled training run may take to save its checkpoint once the window has gone


def hello() -> dict:
    from engine.cli.main import package_version

    return {"reply": "hello", "protocol": PROTOCOL, "version": package_version(), "pid": os.getpid(),
            "python": sys.version.split()[0], "cwd": os.getcwd()}


def serve(stream_in: BinaryIO, stream_out: BinaryIO, backend=None, on_end=None) -> None:
    """Answer requests from stream_in on stream_out until stream_in ends (then on_end(), if given)."""
    from engine.server.service import EngineService

    writer = FrameWriter(stream_out)
    gone = threading.Event()

    def send(request_id: int, reply: str, body) -> None:
        if gone.is_set():
            return
        buffers: list = []
        try:
            header = {"id": request_id, "reply": reply, "body": encode(body, buffers)}
        except CodecError as e:
            log.error("reply to %s could not be sent: %s", request_id, e)
            header, buffers = {"id": request_id, "reply": "error",
                               "body": f"the engine could not send its answer: {e}"}, []
        try:
            writer.write(header, buffers)
        except (OSError, ValueError):  # the window has gone: stop answering
            gone.set()

    if backend is None:
        from engine.server.backend import real_backend

        backend = real_backend()
    writer.write(hello())
    service = EngineService(backend, send)
    try:
        while True:
            frame = read_frame(stream_in)
            if frame is None:
                break
            header, buffers = frame
            try:
                header["body"] = decode(header.get("body"), buffers)
            except CodecError as e:
                log.error("ignored a request: %s", e)
                if isinstance(header.get("id"), int):
                    send(header["id"], "error", f"the engine could not read the request: {e}")
                continue
            service.handle(header)
    except (WireError, OSError) as e:
        log.error("the window's messages stopped: %s", e)
    finally:
        service.stop(wait_s=SAVE_WAIT_S)  # a training run saves its checkpoint before the process ends
        gone.set()
        if on_end is not None:
            on_end()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a not in ("--beside-window",) for a in argv):
        print(f"unknown option {next(a for a in argv if a != '--beside-window')!r}; allowed: --beside-window",
              file=sys.stderr)
        return 2
    if "--beside-window" in argv:
        os.environ.setdefault("INVERSIONVIEW_BESIDE_WINDOW", "1")
    # the protocol owns the process's standard output; a stray print (ours or a library's, in Python
    # or in C) goes to standard error instead of corrupting a message
    stream_out = os.fdopen(os.dup(1), "wb", buffering=1 << 16)
    stream_in = os.fdopen(os.dup(0), "rb", buffering=1 << 16)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s engine %(levelname)s %(name)s [%(threadName)s] %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # a worker may be deep inside torch when the window goes: end the process rather than wait for it
    serve(stream_in, stream_out, on_end=lambda: os._exit(0))
    return 0
