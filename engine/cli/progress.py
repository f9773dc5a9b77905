"""Progress bars with ETA for long commands: drawn by `rich` in a terminal, a plain line every few
seconds when the output is not one (a log file, a pipe, a CI job).

    bar = ProgressBar("train counting")
    bar.update(done, total, elapsed_seconds, "loss 0.12")   # as often as you like: it is throttled
    bar.note("a line of its own, kept above the bar")
    bar.close()

In a terminal every bar on one stream is a row of one rich display (rich allows one live display at
a time): a bar made while another is open is drawn under it, and closes with it (the decoder's
check bar under its training bar, the study's one bar per stage). A bar shows its row from its
first update. While a display is live, what the command prints to the same terminal (stdout too,
when it is that terminal) is printed above the bars; stdout that goes to a file or a pipe is left
alone. In a log each bar writes its own line at its first update and then at most every
`log_every_s` seconds (force=True: now), with no escape codes.
"""
from __future__ import annotations

import atexit
import math
import sys
import time
import weakref

TTY_REDRAW_S = 0.1  # a terminal bar's fields change at most this often (rich redraws 10 times a second)


def format_seconds(s: float) -> str:
    """'mm:ss', or 'h:mm:ss' from an hour on (negative: 0)."""
    s = int(max(s, 0))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


def eta_seconds(done: int, total: int, elapsed: float) -> float:
    """The seconds left at the pace so far."""
    return elapsed / max(done, 1) * (total - done)


def log_line(label: str, done: int, total: int, elapsed: float, extra: str = "") -> str:
    """The line a bar writes to a log: label, a 30-character bar, done/total, percent, elapsed, ETA."""
    frac = done / max(total, 1)
    bar = "#" * int(min(max(frac, 0.0), 1.0) * 30)
    return (f"{label} [{bar:<30}] {done}/{total} {frac:6.1%} elapsed {format_seconds(elapsed)} "
            f"ETA {format_seconds(eta_seconds(done, total, elapsed))} {extra}").rstrip()


def _underlying(stream):
    """The real stream behind rich's stdout/stderr proxy (installed while a display is live)."""
    return getattr(stream, "rich_proxied_file", stream)


def is_terminal(stream) -> bool:
    """Whether a bar on `stream` is drawn by rich (True) or written as log lines (False)."""
    try:
        return bool(_underlying(stream).isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class _Display:
    """One rich Progress on one terminal stream; its rows are the open bars."""

    def __init__(self, stream):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn

        self.stream = stream
        console = Console(file=stream, force_terminal=True)  # the choice is made by is_terminal, not by rich
        # the process's own terminal: its other output is printed above the bars, not through them
        own = stream is _underlying(sys.stderr) or stream is _underlying(sys.stdout)
        self.progress = Progress(
            TextColumn("{task.description}", markup=False), BarColumn(bar_width=30), MofNCompleteColumn(),
            TaskProgressColumn(), TextColumn("elapsed {task.fields[elapsed]} ETA {task.fields[eta]}"),
            TextColumn("{task.fields[extra]}", markup=False),
            console=console, transient=False,
            redirect_stdout=own and is_terminal(sys.stdout), redirect_stderr=own and is_terminal(sys.stderr))
        self.bars: list[ProgressBar] = []  # open, in the order made
        self.started = False

    def start(self) -> None:
        if not self.started:
            self.progress.start()
            self.started = True

    def close(self, bar: ProgressBar) -> None:
        """Close `bar` and the bars made after it; the display stops with its last bar."""
        if bar not in self.bars:
            return
        for later in self.bars[self.bars.index(bar):]:
            later.closed = True
        self.bars = self.bars[:self.bars.index(bar)]
        if not self.bars:
            self.stop()

    def stop(self) -> None:
        if _DISPLAYS.get(self.stream) is self:
            del _DISPLAYS[self.stream]
        if self.started:
            self.progress.stop()  # the last drawing stays on the screen
            self.started = False


_DISPLAYS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # real stream -> its display


def _display_for(stream) -> _Display:
    display = _DISPLAYS.get(stream)
    if display is None:
        display = _Display(stream)
        try:
            _DISPLAYS[stream] = display
        except TypeError:  # a stream that takes no weak reference: a display of its own
            pass
    return display


@atexit.register
def _stop_all() -> None:
    """Stop every display at exit (a bar left open would leave the cursor hidden)."""
    for display in list(_DISPLAYS.values()):
        display.stop()


class ProgressBar:
    """One bar: update(done, total, elapsed_seconds, extra) as work goes, note() for a line of its
    own, close() at the end. terminal: None chooses by the stream (is_terminal)."""

    def __init__(self, label: str, stream=None, log_every_s: float = 10.0, terminal: bool | None = None):
        self.label = label
        self.stream = _underlying(stream or sys.stderr)
        self.tty = is_terminal(self.stream) if terminal is None else terminal
        self.log_every_s = log_every_s
        self.closed = False
        self._last = -math.inf  # the first update is shown
        self._task = None
        self._display = None
        if self.tty:
            self._display = _display_for(self.stream)
            self._display.bars.append(self)

    def update(self, done: int, total: int, elapsed: float, extra: str = "", force: bool = False) -> None:
        """done of total items (or seconds) after `elapsed` seconds; `extra` is shown after the ETA."""
        if self.closed:
            return
        now = time.monotonic()
        if not force and now - self._last < (TTY_REDRAW_S if self.tty else self.log_every_s):
            return
        self._last = now
        if not self.tty:
            self.stream.write(log_line(self.label, done, total, elapsed, extra) + "\n")
            self.stream.flush()
            return
        fields = {"elapsed": format_seconds(elapsed), "eta": format_seconds(eta_seconds(done, total, elapsed)),
                  "extra": extra}
        progress = self._display.progress
        if self._task is None:
            self._task = progress.add_task(self.label, total=max(total, 1), completed=done, **fields)
            self._display.start()
        else:
            progress.update(self._task, total=max(total, 1), completed=done, **fields)
        if force:
            progress.refresh()

    def note(self, text: str) -> None:
        """A line of its own above the bar (kept in the scrollback)."""
        if self.tty and self._display is not None and self._display.started:
            self._display.progress.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()
        self._last = -math.inf  # redraw the bar right away

    def close(self) -> None:
        """The bar's last state stays on screen; closing twice is harmless."""
        if self.tty and self._display is not None:
            if self._task is not None and self._display.started:
                self._display.progress.refresh()
            self._display.close(self)
        self.closed = True
