"""How long one piece of sliced GUI-thread work may run before the event loop gets a turn.

Big diagrams and overlays are built a slice per turn of the event loop (app/diagram/view.py,
app/retire.py). Counting items per slice was not enough: the same 400 items cost 6 ms on
one turn and 18 ms on another (the flow thread's Python competes for the GIL and both cores),
and a slice is followed by the repaint it causes (8-25 ms for a GPT-2-sized diagram). A slice
therefore stops after SLICE_MS of work as well as after its item count, whichever comes first.
The time only decides where the work is cut, never what is drawn in the end.
"""
from __future__ import annotations

import time

SLICE_MS = 6.0  # work per turn; with the repaint and the other threads' GIL turns, stalls stay under 50 ms


def now() -> float:
    """The clock slices are measured with (a function, so that tests can stand a fake in)."""
    return time.perf_counter()


class TurnBudget:
    """The time one slice may take, from its creation: `spent()` once SLICE_MS have gone by."""

    __slots__ = ("_end",)

    def __init__(self, ms: float = SLICE_MS):
        self._end = now() + ms / 1000.0

    def spent(self) -> bool:
        return now() >= self._end
