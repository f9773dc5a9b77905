"""A text progress bar with ETA for long commands: redrawn in a terminal, a line every few
seconds in a log file."""
from __future__ import annotations

import sys
import time


def format_seconds(s: float) -> str:
    s = int(max(s, 0))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


class ProgressBar:
    def __init__(self, label: str, stream=None, log_every_s: float = 10.0):
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.log_every_s = log_every_s
        self._last = 0.0

    def update(self, done: int, total: int, elapsed: float, extra: str = "", force: bool = False) -> None:
        now = time.time()
        if not force and not self.tty and now - self._last < self.log_every_s:
            return
        if not force and self.tty and now - self._last < 0.1:
            return
        self._last = now
        frac = done / max(total, 1)
        eta = elapsed / max(done, 1) * (total - done)
        bar = "#" * int(frac * 30)
        line = (f"{self.label} [{bar:<30}] {done}/{total} {frac:6.1%} "
                f"elapsed {format_seconds(elapsed)} ETA {format_seconds(eta)} {extra}")
        if self.tty:
            self.stream.write("\r" + line.ljust(110))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        """A line of its own above the bar (kept in the scrollback)."""
        self.stream.write(("\r" + " " * 110 + "\r" if self.tty else "") + text + "\n")
        self.stream.flush()
        self._last = 0.0  # redraw the bar right away

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
