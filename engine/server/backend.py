"""What the engine process runs for each kind of request: the engine's entry points behind one table.

`EngineBackend` is injectable so tests of the window can run a fake engine (in a thread, through
the same protocol); `real_backend()` is the engine itself, imported when the first request needs it.
Job functions are fn(inv, params, report, cancel): report(item, done, total) streams a piece of the
answer (a map's row, a patched node, a part of the colouring), cancel is a threading.Event.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

WARM_UP_CANDIDATES = 128  # one chunk of the default size


@dataclass
class EngineBackend:
    load_inverter: Callable  # (ModelEntry) -> Inverter
    run_query: Callable  # run_query(inv, text, site, position, options, on_chunk, cancel) -> QueryResult
    warm_up: Callable | None = None  # (Inverter) -> None, run once after loading
    flow_graph: Callable | None = None  # (Inverter, text, target, top_k, cancel=Event) -> FlowGraph
    top_neurons: Callable | None = None  # (Inverter, FlowGraph, layer, position) -> [NeuronReadout]
    jobs: dict = field(default_factory=dict)  # kind -> fn(inv, params, report, cancel)
    train: Callable | None = None  # fn(params, report, cancel) -> answer (engine/server/training.py)


def _load_inverter(entry):
    from engine.query.run import load_inverter as load
    from engine.runtime import flush_denormals
    from engine.store.folders import find_model
    from engine.threads import apply_threads

    apply_threads()  # the engine has the process to itself: every core
    flush_denormals()
    if entry.source in ("bundled", "user"):
        # by name in this engine's own store: an engine on another machine has its own copy
        entry = find_model(entry.name, task=entry.task)
    inv = load(entry, decoder_optional=True)  # without a decoder: the search, the sites and the flow graph work
    inv.probed.task.vocab.strings()  # every token's display string, made now rather than on first use
    return inv


def _run_query(inv, text, site, position, options, on_chunk=None, cancel=None):
    from engine.query.run import run_query as run

    return run(inv, text, site, position, options=options, on_chunk=on_chunk, cancel=cancel)


def _warm_up(inv) -> None:
    """torch pays one-time costs (kernel set-up per shape) on the first queries; paying them while
    "loading" is shown makes the user's first Run as quick as the next ones."""
    from engine.query.types import QueryOptions

    trained = [s.short for s in inv.sites]
    if not inv.can_query or not trained:
        return  # no decoder: the first local search pays its own set-up (a re-run, no sampling)
    task = inv.probed.task
    text = task.examples()[0]
    ids = task.parse_query(text)
    site = task.default_site if task.default_site in trained else trained[-1]
    options = QueryOptions(candidates=WARM_UP_CANDIDATES, chunk_size=WARM_UP_CANDIDATES)
    _run_query(inv, text, site, task.default_position(task.position_labels(ids)), options)


def _flow_graph(inv, text, target=None, top_k=10, cancel=None):
    from engine.flow.build import flow_for_query

    return flow_for_query(inv.probed, text, target=target, top_k=top_k, cancel=cancel)


def _top_neurons(inv, graph, layer, position):
    from engine.flow.build import top_neurons

    return top_neurons(inv.probed.bridge, graph, layer, position)


def _run_map(inv, params, report, cancel):
    from engine.explain.sweep import map_nodes, run_map, sweep_options

    task = inv.probed.task
    ids = task.parse_query(params["text"])
    options = sweep_options(task, **params.get("options", {}))
    # without a decoder (or with the search chosen) the task's sites, each node by local search
    nodes = map_nodes(inv, ids, params.get("sites"), params.get("positions"), sampler=options.sampler)
    return run_map(inv, params["text"], nodes, options,
                   on_row=lambda row, result, done, total: report((row, result), done, total), cancel=cancel)


def _run_colour(inv, params, report, cancel):
    """params: "result" (the QueryResult shown), "order" (sample indices, the rows on screen first);
    each item is {sample index: prob-diff per token} ([]: left plain, as run_query would)."""
    from engine.query.colour import COLOUR_PART, colour_in_parts

    return colour_in_parts(inv, params["result"], params["order"], report, cancel, part=params.get("part", COLOUR_PART))


def patch_setup(task, params: dict):
    """A checked PatchSetup from the window's params: text (the clean query), and either corrupt (a
    text, tokenized as the model reads it) or flips ([position, token] pairs applied to the clean
    input); position (the answer position) and metric ("logit_diff" or "prob")."""
    from engine.patching.setup import flip_one, make_setup

    clean = task.parse_query(params["text"])
    if params.get("flips"):
        corrupt = clean
        for position, token in params["flips"]:
            corrupt = flip_one(task, corrupt, position, token)
    else:
        corrupt = task.tokenize(params.get("corrupt", ""))
    return make_setup(task, clean, corrupt, position=params.get("position"), metric=params.get("metric", "logit_diff"))


def _run_patch(inv, params, report, cancel):
    """Every node patched alone, as `python main.py patch` does; progress as report(None, done, total)."""
    from engine.errors import Cancelled
    from engine.patching.run import patch_nodes

    setup = patch_setup(inv.probed.task, params)
    try:
        return patch_nodes(inv.probed, setup, on_progress=lambda done, total: report(None, done, total), cancel=cancel)
    except Cancelled:
        return None  # nobody listens any more


def real_backend() -> EngineBackend:
    from engine.server.training import run_training

    return EngineBackend(load_inverter=_load_inverter, run_query=_run_query, warm_up=_warm_up,
                         flow_graph=_flow_graph, top_neurons=_top_neurons,
                         jobs={"map": _run_map, "patch": _run_patch, "colour": _run_colour}, train=run_training)
