"""The information map: InversionView at every chosen (site, position) of one input.

Each node is one ordinary query (engine/query/run.py) with the sweep's options, so a node's
row is exactly what a single query there with the same seed gives; the map only adds the
summary per node (engine/explain/summary.py) and keeps the results, so that a click on a node
opens its full result at once and a second map of the same input costs nothing.

Measured (benchmarks/sweep_speed.py): one 256-candidate counting node costs about 0.15 s on one
core, sampling most of it; the whole counting diagram (9 sites x 15 positions) stays within the
30-second goal without batching nodes together, so nodes stay single queries (simple, and each
row reproducible on its own).
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from engine.explain.summary import FeatureShare, summarize
from engine.query.types import QueryOptions, QueryResult

if TYPE_CHECKING:
    from engine.probed.sites import Site
    from engine.query.run import Inverter
    from engine.tasks.base import Task

SWEEP_CANDIDATES = 256  # per node: the and the benchmark's figure; a quarter of a full query
CACHE_NODES = 2048  # node results kept (about 9 counting maps; each result a few hundred samples)


@dataclass
class NodeReading:
    """One row of the map: what the preimage at one (site, position) shares."""

    site: str  # short name
    site_id: str  # hook name (with [head] for heads)
    position: int
    label: str  # the position's label in the query
    candidates: int  # candidates done (with multiplicity)
    in_epsilon: int
    top: FeatureShare | None  # the feature that best says what the preimage shares (None: nothing shared)
    quantiles: tuple[float, float, float]  # 10%, 50%, 90% of the candidates' distances
    complete: bool = True

    @property
    def share(self) -> float:
        """Share of candidates within epsilon."""
        return self.in_epsilon / self.candidates if self.candidates else 0.0

    def reading(self) -> str:
        """What the node's label says on the map: 'count = 3', or why there is none."""
        if self.top is None:
            return "nothing shared" if self.in_epsilon >= 5 else "too few"
        return f"{self.top.name} = {self.top.query_value}"


@dataclass
class InformationMap:
    """A query at each (site, position) node of one input: `rows` (a NodeReading each, in the
    order run: site, position, label, share of candidates within epsilon, distance quantiles
    (10%, 50%, 90%, in the metric's units), the top shared feature); `options` the per-node
    QueryOptions; `seconds` the wall time; `complete` False when cancelled part way."""

    model: str
    query: str
    query_tokens: list[int]
    options: QueryOptions
    rows: list[NodeReading] = field(default_factory=list)
    complete: bool = True
    seconds: float = 0.0


def weighted_quantiles(result: QueryResult, qs=(0.1, 0.5, 0.9)) -> tuple[float, ...]:
    """Distance quantiles over candidates (a sample drawn k times counts k times)."""
    if not result.samples:
        return tuple(float("nan") for _ in qs)
    d = np.array([s.distance for s in result.samples])  # ranked ascending already
    w = np.cumsum([s.multiplicity for s in result.samples])
    return tuple(float(d[min(int(np.searchsorted(w, q * w[-1], side="left")), len(d) - 1)]) for q in qs)


def reading_of(result: QueryResult) -> NodeReading:
    summary = summarize(result)
    return NodeReading(result.site_short, result.site_id, result.query_position,
                       result.query_labels[result.query_position], summary.candidates, summary.in_epsilon,
                       search_top(result) if result.sampler == "search" else summary.top(),
                       weighted_quantiles(result), result.complete)


def search_top(result: QueryResult) -> FeatureShare | None:
    """A search node's reading: its most-tested required feature (engine/explain/flips.py), its
    share the part of that feature's changes that left epsilon; None when nothing was required."""
    from engine.explain.flips import flip_test

    required = [f for f in flip_test(result).features if f.verdict == "required"]
    if not required:
        return None
    f = required[0]
    return FeatureShare(f.name, f.query_value, 1.0 - f.within / f.changed, 0.0, "required")


def map_nodes(inv, ids: list[int], sites: list[str] | None = None,
              positions: list[int | str] | None = None, sampler: str = "decoder") -> list[tuple]:
    """(Site, position) pairs to map, layer by layer: the decoder's sites (or those named) at
    every position of the input but its special tokens (or those named: indices or labels).
    Without a decoder, or with the search as the sampler, the task's default decoder sites."""
    from engine.probed.sites import chosen_sites

    task = inv.probed.task
    by_decoder = sampler == "decoder" or (sampler == "auto" and inv.has_decoder)
    if sites:
        chosen = chosen_sites(inv.probed.config, sites)  # forward order
    else:
        chosen = list(inv.sites) if by_decoder else chosen_sites(inv.probed.config, None, task)
    if sampler == "decoder":
        for site in chosen:
            inv.site_index(site)  # SiteError naming the decoder's sites when it was not trained there
    if positions:
        at = sorted({task.resolve_position(ids, p) for p in positions})
    else:
        special = task.special_mask(np.array([ids]))[0]
        at = [i for i in range(len(ids)) if not special[i]]
    return [(site, p) for site in chosen for p in at]


class NodeCache:
    """Node results by (model folder, decoder file's time, input, site, position, options): a map
    opened again, or a node clicked on the map, needs no sampling. Bounded (least recently used
    go first)."""

    def __init__(self, size: int = CACHE_NODES):
        self.size = size
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()  # the engine thread fills it; the app may read it

    @staticmethod
    def key(inv, ids, site, position: int, options: QueryOptions) -> tuple:
        path = inv.entry.path / "decoder.safetensors"
        stamp = path.stat().st_mtime_ns if path.exists() else 0
        return (str(inv.entry.path), stamp, tuple(ids), site.id, position, replace(options, colour=False))

    def get(self, key) -> QueryResult | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
            return hit

    def put(self, key, result: QueryResult) -> None:
        with self._lock:
            self._items[key] = result
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


NODE_CACHE = NodeCache()


def sweep_options(task: Task, **changes) -> QueryOptions:
    """A map's per-node options: the task's schedule and metric, SWEEP_CANDIDATES candidates,
    no colouring (nobody reads a token's colour on a map), one chunk per node. changes: any
    QueryOptions field (candidates=64, seed=1, epsilon=0.05, ...)."""
    from engine.query.types import default_options

    base = default_options(task, candidates=SWEEP_CANDIDATES, colour=False)
    options = replace(base, **changes)
    return replace(options, first_chunk_size=options.candidates, chunk_size=options.candidates)


def run_map(inv: Inverter, text: str, nodes: list[tuple[Site, int]] | None = None,
            options: QueryOptions | None = None,
            on_row: Callable[[NodeReading, QueryResult, int, int], None] | None = None,
            cancel: threading.Event | None = None, cache: NodeCache = NODE_CACHE) -> InformationMap:
    """InversionView at each node, in order; on_row(reading, result, done, total) after each.
    Cancel stops between nodes (and inside a node's sampling); the map then has the rows done.

    text: the input as typed; nodes: (Site, position index) pairs (default: `map_nodes`, every
    site at every position after BOS); options: default `sweep_options(task)`."""
    from engine.query.run import run_query

    t0 = time.time()
    task = inv.probed.task
    ids = task.parse_query(text)
    options = options or sweep_options(task)
    options.check()
    nodes = nodes if nodes is not None else map_nodes(inv, ids)
    out = InformationMap(inv.entry.name, task.detokenize(ids), list(ids), options)
    for done, (site, position) in enumerate(nodes, start=1):
        if cancel is not None and cancel.is_set():
            out.complete = False
            break
        key = NodeCache.key(inv, ids, site, position, options)
        result = cache.get(key)
        if result is None:
            result = run_query(inv, text, site, position, options, cancel=cancel)
            if not result.complete:  # cancelled inside the node: keep nothing half done
                out.complete = False
                break
            cache.put(key, result)
        reading = reading_of(result)
        out.rows.append(reading)
        if on_row is not None:
            on_row(reading, result, done, len(nodes))
    out.seconds = time.time() - t0
    if cancel is not None and cancel.is_set() and len(out.rows) < len(nodes):
        out.complete = False
    return out
