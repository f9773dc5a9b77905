"""Ctrl-C during training: the first press asks the run to stop after its current step (the
checkpoint is written, so nothing is lost); a second press interrupts at once."""
from __future__ import annotations

import signal
import sys
import threading


class StopOnInterrupt:
    """A context manager; `requested()` is the training loop's should_stop."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._previous = None

    def requested(self) -> bool:
        return self._stop.is_set()

    def _on_signal(self, signum, frame) -> None:
        if self._stop.is_set():
            raise KeyboardInterrupt
        self._stop.set()
        print("\nstopping after this step and saving the checkpoint (Ctrl-C again to quit at once)",
              file=sys.stderr, flush=True)

    def __enter__(self) -> StopOnInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_signal)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
