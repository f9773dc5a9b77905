"""Long jobs besides queries: the information map, activation patching, and the prob-diff colouring
of a shown result (app/results/colouring.py).

A JobRequest names its kind and carries plain data; the engine process maps each kind to its
function (engine/server/backend.py), streams pieces of the answer (a map's row, a patched node) and
then the answer. One job of each kind runs at a time: a new one supersedes the old.
"""
from __future__ import annotations

from dataclasses import dataclass, field

JOB_KINDS = ("map", "patch", "colour")


@dataclass
class JobRequest:
    kind: str  # one of JOB_KINDS
    model_key: str  # the model folder (str of ModelEntry.path)
    params: dict = field(default_factory=dict)
