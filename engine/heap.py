"""Keeping the cyclic garbage collector's passes short while a GUI thread waits for the GIL.

A full pass walks every object the collector tracks while holding the GIL. torch, transformers
and transformer_lens make about 430,000 of them: one full pass measured 340 ms, and the imports
and a flow graph's tens of thousands of small tuples trigger such passes, freezing the window
for that long each time.

- Modules live as long as the process, so after the engine's imports everything alive is moved
  to the permanent generation (`settle`), which passes skip.
- While importing or loading a model, collection is paused (`paused`): those make many objects
  that all survive, so every pass would be wasted. Objects made in a pause are still young when it
  ends, so `settle` runs inside it, before collection resumes: otherwise the first pass after it
  would walk all of them at once.
- A loaded model is not frozen: it adds 6,000 (counting), 22,000 (ioi) or 15,000 (a GPT-2-small
  folder) objects, and a full pass over the heap with it costs 1, 7 and 13 ms. Unfrozen, a
  dropped model is collected the usual way.
"""
from __future__ import annotations

import gc
import threading
from contextlib import contextmanager

_pause_lock = threading.Lock()
_pausers = 0
_was_enabled = True


def settle() -> None:
    """What is alive now lives as long as the process: keep it out of every later pass."""
    gc.freeze()


@contextmanager
def paused():
    """No collection while the block runs. Nestable and thread-safe: collection resumes, if it
    was on, when the last pauser leaves."""
    global _pausers, _was_enabled
    with _pause_lock:
        if _pausers == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pausers += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pausers -= 1
            if _pausers == 0 and _was_enabled:
                gc.enable()
