"""A job's progress bar that says what it is doing and how long is left, in a width that fits.

The map and the causal check count nodes; their bars were capped at 160-180 pixels, so
"105 / 1,332 nodes" was clipped to "105 / 13!", and an 85-second patching run gave no hint of
when it would end. JobProgress makes the bar at least as wide as the count ("1,332 / 1,332
nodes") and at most as wide as the count with the time left; where the row leaves it narrower
than that, the time left goes to the tooltip rather than being clipped (the diagram panel's row
must still fit its 380-pixel minimum). The time left comes from the rate since the first report:
the wait for a model to load, before it, is not counted as work.
"""
from __future__ import annotations

import time

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QProgressBar, QSizePolicy

now = time.monotonic  # tests move a clock of their own (monkeypatch)
TEXT_MARGIN = 32  # the bar's frame and the style's padding around its text


def format_seconds(seconds: float) -> str:
    """'0:40', '12:05', '1:02:03'."""
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class JobProgress(QObject):
    """Drives one QProgressBar through a job: busy() at the start, report(done, total) as items come."""

    def __init__(self, bar: QProgressBar, unit: str = "nodes"):
        super().__init__(bar)
        self.bar, self.unit = bar, unit
        self._texts = ("", "")  # (the whole text, the count alone)
        self._first: tuple[float, int] | None = None  # (time, done) of the first report
        self._sized_for = 0
        bar.setTextVisible(True)
        bar.setSizePolicy(QSizePolicy.Expanding, bar.sizePolicy().verticalPolicy())  # give it stretch in its row
        bar.installEventFilter(self)

    def busy(self) -> None:
        """Started, nothing reported yet (the model may still be loading)."""
        self._first = None
        self._texts = ("", "")
        self.bar.setRange(0, 0)
        self.bar.setFormat("")
        self.bar.setToolTip("")

    def report(self, done: int, total: int) -> None:
        t = now()
        if self._first is None or done < self._first[1]:
            self._first = (t, done)
        self.bar.setRange(0, max(total, 1))
        self.bar.setValue(done)
        count = f"{done:,} / {total:,} {self.unit}"
        left = self.seconds_left(done, total, t)
        text = f"{count} · about {format_seconds(left)} left" if left is not None else count
        self._texts = (text, count)
        self._fit(total)
        self._show()
        self.bar.setToolTip(text)

    def _show(self) -> None:
        """The whole text where the bar is wide enough for it, else the count alone."""
        text, count = self._texts
        self.bar.setFormat(text if self._width(text) <= self.bar.width() else count)

    def eventFilter(self, watched, event) -> bool:
        if watched is self.bar and event.type() == QEvent.Resize and self._texts[0]:
            self._show()  # the layout widened the bar (to its new maximum) or narrowed it
        return False

    def seconds_left(self, done: int, total: int, t: float) -> float | None:
        """From the rate since the first report; None until there is a rate to go by."""
        t0, done0 = self._first
        if done >= total or done <= done0 or t <= t0:
            return None
        return (t - t0) / (done - done0) * (total - done)

    def _width(self, text: str) -> int:
        return self.bar.fontMetrics().horizontalAdvance(text) + TEXT_MARGIN

    def _fit(self, total: int) -> None:
        """At least the widest count of this job, at most that and the time left (set once per
        total, so the bar does not jump as the figures change)."""
        if total == self._sized_for:
            return
        self._sized_for = total
        count = f"{total:,} / {total:,} {self.unit}"
        self.bar.setMinimumWidth(self._width(count))
        self.bar.setMaximumWidth(self._width(f"{count} · about 0:00:00 left"))
