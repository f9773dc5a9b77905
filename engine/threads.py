"""The one thread policy: how many threads torch uses, decided here and set nowhere else.

torch's thread count is process-wide, so the app's engine thread, its training thread, the
command line and the flow graph all go through this module. Why the numbers:

- With a window open, torch gets every core but one, which the GUI thread needs. Measured on
  2 cores while another process trained: a 1,024-candidate counting query took 35 s with torch's
  default of 2 threads (OpenMP workers spinning against each other and the GUI) and 0.5 s with 1.
- Work on the paper's tiny models (d_model x max(d_mlp, d_vocab) up to SMALL_WORK) runs on one
  thread: waking a second costs more than it saves, and on a busy machine far more (10x in our
  measurements of the flow graph).

INVERSIONVIEW_THREADS overrides the default count. Imports torch only when a count is applied.
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager

SMALL_WORK = 1 << 20
_lock = threading.RLock()


def default_threads(with_gui: bool) -> int:
    """torch threads for the engine: every core but the GUI's when a window is open."""
    override = os.environ.get("INVERSIONVIEW_THREADS", "")
    if override.isascii() and override.isdigit() and int(override) > 0:
        return int(override)
    cores = os.cpu_count() or 2
    beside_window = with_gui or os.environ.get("INVERSIONVIEW_BESIDE_WINDOW") == "1"  # engine/server/main.py
    return max(1, cores - 1) if beside_window else cores


def apply_threads(n: int | None = None, with_gui: bool = False) -> int:
    """Set torch's thread count (the default for the situation when n is None); returns it."""
    import torch

    n = default_threads(with_gui) if n is None else int(n)
    with _lock:
        torch.set_num_threads(max(1, n))
    return n


def is_small(d_model: int, d_wide: int) -> bool:
    """Is a model this size faster on one thread (see the module docstring)?"""
    return d_model * d_wide <= SMALL_WORK


@contextmanager
def one_thread_if_small(d_model: int, d_wide: int, on_cpu: bool = True):
    """One torch thread for the duration when the work is small; the count is restored after."""
    import torch

    with _lock:
        before = torch.get_num_threads()
        if not on_cpu or before == 1 or not is_small(d_model, d_wide):
            yield
            return
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)
