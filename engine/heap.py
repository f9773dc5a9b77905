"""Keeping the cyclic garbage collector's full passes short while a GUI thread waits for the GIL.

The collector's oldest generation holds every long-lived object: torch, transformers and
transformer_lens make several hundred thousand of them, and a loaded model more. A full pass
walks them all while holding the GIL, and building a flow graph (tens of thousands of small
tuples) triggers such passes: with a GPT-2-sized model loaded, the GUI thread measured stalls of
up to 280 ms while a flow graph was computed on the engine thread. Objects that live as long as
the session (modules, a loaded model) are moved to the permanent generation, which passes skip:
the same measurement gave 45 ms.

Frozen objects are never collected, so before a model is let go its objects are unfrozen and
collected once (a pause at a model switch, not during work).
"""
from __future__ import annotations

import gc


def settle() -> None:
    """After imports and model loads: what is alive now lives long; keep it out of full passes."""
    gc.freeze()


def release() -> None:
    """Before dropping a model: make everything collectable again, collect, and freeze the rest."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
