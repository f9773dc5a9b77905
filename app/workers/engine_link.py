"""One connection to an engine: a child process (the app) or a thread over the same pipes (tests).

Plain Python, no Qt: the link starts the engine, writes requests from a writer thread (a 0.5 MB
colouring request never waits on the GUI thread for the pipe to drain) and hands each decoded
reply to `on_message` on its reader thread; `on_end(reason)` once when the engine has gone.
The engine's standard error, its log, goes to ENGINE_LOG in the log folder.
"""
from __future__ import annotations

import os
import queue
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from engine.logs import log_dir
from engine.server.codec import CodecError, decode, encode
from engine.server.wire import PROTOCOL, FrameWriter, WireError, read_frame

ROOT = Path(__file__).resolve().parents[2]
ENGINE_LOG = "engine.log"
LOG_KEEP = 4 << 20  # bytes: a longer engine log starts afresh
HELLO_TIMEOUT_S = 60.0  # an engine over SSH may take a while to answer


def default_command() -> list[str]:
    """This interpreter running the engine module, beside the window."""
    return [sys.executable, "-m", "engine.server", "--beside-window"]


def parse_command(text: str) -> list[str]:
    """A user's engine command (a setting, --engine-command) as arguments; ValueError names the fault."""
    try:
        args = shlex.split(text)
    except ValueError as e:
        raise ValueError(f"the engine command {text!r} cannot be read ({e}); give it as a shell would, "
                         "e.g. ssh gpu-box /path/.venv/bin/python -m engine.server") from None
    if not args:
        raise ValueError("the engine command is empty; e.g. ssh gpu-box /path/.venv/bin/python -m engine.server")
    return args


def engine_log_path() -> Path:
    return log_dir() / ENGINE_LOG


def describe_exit(code: int | None) -> str:
    if code is None:
        return "its connection closed"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        why = " (out of memory, or killed)" if -code == signal.SIGKILL else ""
        return f"it was stopped by {name}{why}"
    return f"it exited with code {code}"


class EngineLink:
    def __init__(self, on_message: Callable[[dict], None], on_end: Callable[[str], None],
                 command: list[str] | None = None, backend=None):
        self._on_message, self._on_end = on_message, on_end
        self.command = command or default_command()
        self._backend = backend  # given: the engine runs in a thread of this process (tests' fakes)
        self._process: subprocess.Popen | None = None
        self._server: threading.Thread | None = None  # the in-thread engine (a backend given)
        self._outbox: queue.Queue = queue.Queue()
        self._closing = threading.Event()
        self.hello: dict | None = None

    # ---- start and stop ------------------------------------------------------------------
    def start(self) -> None:
        if self._backend is not None:
            to_engine_r, to_engine_w = os.pipe()
            from_engine_r, from_engine_w = os.pipe()
            engine_in, engine_out = os.fdopen(to_engine_r, "rb"), os.fdopen(from_engine_w, "wb")
            from engine.server.main import serve

            self._server = threading.Thread(target=serve, args=(engine_in, engine_out, self._backend, engine_out.close),
                                            name="engine-in-thread", daemon=True)
            self._server.start()
            self._stdin, self._stdout = os.fdopen(to_engine_w, "wb"), os.fdopen(from_engine_r, "rb")
        else:
            log = engine_log_path()
            log.parent.mkdir(parents=True, exist_ok=True)
            mode = "w" if log.exists() and log.stat().st_size > LOG_KEEP else "a"
            try:
                with open(log, mode, encoding="utf-8") as err:
                    self._process = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                     stderr=err, cwd=ROOT, start_new_session=True)
            except OSError as e:  # no such program, not executable: said like any engine that ended
                why = f"it could not be started ({e.strerror or e}: {e.filename or self.command[0]})"
                threading.Thread(target=self._on_end, args=(why,), name="engine-unstarted", daemon=True).start()
                return
            self._stdin, self._stdout = self._process.stdin, self._process.stdout
        threading.Thread(target=self._write_loop, name="engine-writer", daemon=True).start()
        threading.Thread(target=self._read_loop, name="engine-reader", daemon=True).start()

    def close(self, wait_s: float = 0.5, kill: bool = True) -> None:
        """End the engine: its input closes (it exits at once); a process still there is killed, unless
        kill is False (a training engine saving its checkpoint ends on its own)."""
        self._closing.set()
        self._outbox.put(None)
        try:
            self._stdin.close()
        except (OSError, AttributeError):  # AttributeError: it never started
            pass
        if self._process is not None and kill:
            try:
                self._process.wait(wait_s)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(2.0)

    def kill(self) -> None:
        """What a crash does (tests and benchmarks)."""
        if self._process is not None:
            self._process.kill()

    @property
    def alive(self) -> bool:
        """Is the engine (its process, or its thread) still running?"""
        if self._process is not None:
            return self._process.poll() is None
        return self._server is not None and self._server.is_alive()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    # ---- messages ----------------------------------------------------------------------
    def send(self, header: dict, body=None) -> None:
        """Queue a message. It is encoded on the writer thread (a 1,000-sample result sent to be
        coloured takes tens of milliseconds to encode); one that cannot be is answered as an error."""
        self._outbox.put((header, body))

    def _write_loop(self) -> None:
        writer = FrameWriter(self._stdin)
        while (item := self._outbox.get()) is not None:
            header, body = item
            buffers: list = []
            try:
                header = dict(header, body=encode(body, buffers))
            except CodecError as e:
                self._on_message({"id": header.get("id", 0), "reply": "error", "body": f"cannot send the request: {e}"})
                continue
            try:
                writer.write(header, buffers)
            except (OSError, ValueError):
                return  # the engine has gone: the reader reports it

    def _read_loop(self) -> None:
        reason = ""
        try:
            frame = read_frame(self._stdout)
            if frame is None or frame[0].get("reply") != "hello":
                reason = "it did not answer as an InversionView engine"
            elif frame[0].get("protocol") != PROTOCOL:
                self.hello = frame[0]
                reason = (f"it speaks protocol {frame[0].get('protocol')!r} (version {frame[0].get('version')}), "
                          f"this window protocol {PROTOCOL}: run the same version of InversionView Studio on both")
                self._on_end(reason)
                self.close()
                return
            else:
                self.hello = frame[0]
                self._on_message(frame[0])
                while (frame := read_frame(self._stdout)) is not None:
                    header, buffers = frame
                    header["body"] = decode(header.get("body"), buffers)
                    self._on_message(header)
        except (WireError, CodecError, OSError) as e:
            reason = f"its messages could not be read ({e})"
        self._outbox.put(None)  # the writer ends with the link, whoever ended it
        if self._closing.is_set():
            return
        if self._process is not None:
            try:
                code = self._process.wait(5.0)
            except subprocess.TimeoutExpired:
                self._process.kill()
                code = self._process.wait(2.0)
            reason = reason or describe_exit(code)
        self._on_end(reason or "its connection closed")
