"""Activation patching, the causal check: does a node carry the difference between two inputs?

This room owns the patching set-up (a clean input, a corrupted one of the same length, the
answer position and the two answer tokens, the metric), the nodes it patches (a flow-graph site
at a position, `a1.0@5`), the patched forward passes (the corrupted run's activation of a node
written into the clean run, through forward hooks only: the model itself never changes) and
their results as plain data (no tensors).

- `nodes.py`: `Node`, parsing `SITE@POSITION`, every node that can affect the answer
- `setup.py`: `PatchSetup`, `make_setup`, corruptions (`flip_one`, `parse_flip`), answer tokens
- `hooks.py`: reading the corrupted activations, and the hooks that patch rows of a batch
- `run.py`: `metric_of`, `patch_nodes`, `patch_cumulative`
- `report.py`: `PatchEffect`, `PatchReport`, `CumulativeStep`, `CumulativeReport` (JSON export)

The names are imported lazily, so that `import engine.patching` costs nothing (torch is only
needed by the forward passes).
"""
from __future__ import annotations

_EXPORTS = {
    "Node": "nodes", "parse_node": "nodes", "parse_nodes": "nodes", "all_nodes": "nodes",
    "PatchSetup": "setup", "make_setup": "setup", "flip_one": "setup", "parse_flip": "setup",
    "METRICS": "setup",
    "metric_of": "run", "patch_nodes": "run", "patch_cumulative": "run",
    "PatchEffect": "report", "PatchReport": "report", "CumulativeStep": "report",
    "CumulativeReport": "report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'engine.patching' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"engine.patching.{_EXPORTS[name]}"), name)
