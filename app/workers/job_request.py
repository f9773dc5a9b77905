"""Long jobs on the engine thread besides queries: the information map, activation patching, and
the prob-diff colouring of a shown result (app/results/colouring.py).

A JobRequest names its kind and carries plain data; the engine backend maps each kind to a
function run on the engine thread as fn(inv, params, report, cancel), where report(item, done,
total) streams a piece of the answer (a map's row, a patched node) and cancel is the request's
Event. One job of each kind runs at a time: a new one supersedes (cancels) the old.
Plain Python (no Qt, no torch).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

JOB_KINDS = ("map", "patch", "colour")


@dataclass
class JobRequest:
    kind: str  # one of JOB_KINDS
    model_key: str  # the model folder (str of ModelEntry.path)
    params: dict = field(default_factory=dict)
    cancel: threading.Event = field(default_factory=threading.Event, compare=False, repr=False)


def real_jobs() -> dict:
    """The real engine's job functions; engine modules are imported on the engine thread."""

    def run_map(inv, params, report, cancel):
        from engine.explain.sweep import map_nodes, run_map, sweep_options

        task = inv.probed.task
        ids = task.parse_query(params["text"])
        options = sweep_options(task, **params.get("options", {}))
        # without a decoder (or with the search chosen) the task's sites, each node by local search
        nodes = map_nodes(inv, ids, params.get("sites"), params.get("positions"), sampler=options.sampler)
        return run_map(inv, params["text"], nodes, options,
                       on_row=lambda row, result, done, total: report((row, result), done, total), cancel=cancel)

    def run_colour(inv, params, report, cancel):
        # params: "result" (the QueryResult shown), "order" (sample indices, the rows on screen
        # first); each item is {sample index: prob-diff per token} ([]: left plain, as run_query would)
        from engine.query.colour import COLOUR_PART, colour_in_parts

        return colour_in_parts(inv, params["result"], params["order"], report, cancel,
                               part=params.get("part", COLOUR_PART))

    from app.patching.job import run_patch

    return {"map": run_map, "patch": run_patch, "colour": run_colour}
