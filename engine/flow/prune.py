"""Pruning a flow graph by influence on the output, the way attribution-graph tools prune theirs.

A weight threshold keeps strong edges wherever they are; a GPT-2-sized graph still has
thousands of them, most leading nowhere near the token being explained. Attribution-graph tools
(circuit-tracer, Neuronpedia) instead keep the nodes that carry a share of the total influence
on the output (80% by default) and then the edges that carry a share of what flows between the
kept nodes (98%). Here:

- an edge's weight is the share of its destination's input it supplies (incoming weights are
  renormalised per node: the MLP's input edge, drawn with the MLP's share of the residual, is
  the MLP's whole input);
- the influence of a node is the sum over its outgoing edges of weight x the destination's
  influence, with the output node at 1: the share of the output that flows through it, summed
  over all paths. The graph is acyclic and `graph.nodes` is in forward order, so one backward
  sweep computes it;
- nodes are kept from the most influential down until they hold `node_share` of the total; edges
  between kept nodes are scored by weight x the destination's influence and kept from the top
  until they hold `edge_share` of those edges' total.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.flow.graph import FlowGraph, NodeKey
from engine.probed.sites import canonical_site

DEFAULT_NODE_SHARE = 0.8
DEFAULT_EDGE_SHARE = 0.98


@dataclass(frozen=True)
class PrunedGraph:
    output: NodeKey
    node_share: float
    edge_share: float
    nodes: frozenset  # kept node keys (the output always among them)
    edges: list  # kept FlowEdges, in the graph's (forward) order
    influence: dict  # node key -> its influence on the output (1.0 at the output)
    cumulative: dict  # kept node key -> the share of the total held by it and every node above it

    def summary(self) -> str:
        site, pos = self.output
        return (f"{len(self.nodes)} nodes hold {self.node_share:.0%} and {len(self.edges)} edges "
                f"{self.edge_share:.0%} of the influence on {site} @ {pos}")


def pruned_json(doc: dict, pruned: PrunedGraph) -> dict:
    """A graph's JSON (FlowGraph.to_json, parsed) with only the pruned edges, and the shares it
    was pruned to, so that a file says how it was made (the app's export and `flow --json`)."""
    from engine.flow.graph import edge_json

    doc["edges"] = [edge_json(e) for e in pruned.edges]
    doc["pruned"] = {"edges": f"pruned by influence: {pruned.summary()}", "node_share": pruned.node_share,
                     "edge_share": pruned.edge_share, "nodes": [list(k) for k in pruned.nodes]}
    return doc


def check_share(name: str, value: float) -> float:
    """A share must be in (0, 1]; the command line and the app pass user input through here."""
    if not 0 < value <= 1:
        raise ValueError(f"{name} must be a share in (0, 1], e.g. 0.8; got {value}")
    return float(value)


def _incoming_totals(graph: FlowGraph) -> dict:
    """node key -> the sum of the positive weights into it (what edge shares are taken of)."""
    totals: dict = {}
    for _, dst, weight in graph.edges:
        if weight > 0:
            totals[dst] = totals.get(dst, 0.0) + weight
    return totals


def influence_on(graph: FlowGraph, output: NodeKey | None = None) -> dict:
    """Each node's influence on `output` (default: the graph's output node)."""
    output = _output(graph, output)
    incoming_total = _incoming_totals(graph)
    outgoing: dict = {}
    for src, dst, weight in graph.edges:
        if weight > 0:
            outgoing.setdefault(src, []).append((dst, weight))
    influence = {n.key: 0.0 for n in graph.nodes}
    influence[output] = 1.0
    for node in reversed(graph.nodes):  # destinations before their sources
        key = node.key
        if key == output:
            continue
        influence[key] = sum(weight / incoming_total[dst] * influence.get(dst, 0.0)
                             for dst, weight in outgoing.get(key, ()))
    return influence


@dataclass(frozen=True)
class InfluenceIndex:
    """One graph's influence on one output, arranged once so that pruning at any share is a few
    array operations: the share slider re-prunes a GPT-2-sized graph (47,808 edges) on every move,
    which took 11 ms of the GUI thread when every edge was scored again each time."""

    output: NodeKey
    influence: dict  # node key -> influence on the output (influence_on)
    ranked: tuple  # node keys with influence > 0, most influential first (ties in graph order)
    running: np.ndarray  # float64 [len(ranked)]: the influence summed down to each ranked node
    edges: np.ndarray  # int64 [E]: indices into graph.edges of the edges that can be kept, best score first
    scores: np.ndarray  # float64 [E]: each one's weight share x its destination's influence
    needs: np.ndarray  # int64 [E]: how many ranked nodes must be kept for both its ends to be

    def kept_count(self, node_share: float) -> int:
        """How many of the ranked nodes are kept: each while the ones above hold < the share."""
        if not self.ranked:
            return 0
        before = np.concatenate(([0.0], self.running[:-1]))  # [N]: held by the nodes above each one
        return int(np.searchsorted(before, node_share * self.running[-1] - 1e-12, side="left"))


def influence_index(graph: FlowGraph, output: NodeKey | None = None, influence: dict | None = None) -> InfluenceIndex:
    """influence: influence_on(graph, output) when the caller has it already."""
    output = _output(graph, output)
    influence = influence if influence is not None else influence_on(graph, output)
    order = {n.key: i for i, n in enumerate(graph.nodes)}
    ranked = tuple(sorted((k for k, v in influence.items() if v > 0), key=lambda k: (-influence[k], order.get(k, 0))))
    running, total = [], 0.0
    for key in ranked:  # summed in Python, in rank order: the same floats the shares are read from
        total += influence[key]
        running.append(total)
    place = {key: i + 1 for i, key in enumerate(ranked)}  # kept when at least this many are
    place[output] = 0  # the output is always kept
    incoming_total = _incoming_totals(graph)
    picked, scores, needs = [], [], []
    for i, (src, dst, weight) in enumerate(graph.edges):
        if weight > 0 and src in place and dst in place:
            score = weight / incoming_total[dst] * influence[dst]
            if score > 0:
                picked.append(i)
                scores.append(score)
                needs.append(max(place[src], place[dst]))
    scores_a = np.asarray(scores, dtype=np.float64)  # [E]
    best = np.argsort(-scores_a, kind="stable")  # [E]: ties keep the graph's order
    return InfluenceIndex(output, influence, ranked, np.asarray(running, dtype=np.float64),
                          np.asarray(picked, dtype=np.int64)[best], scores_a[best],
                          np.asarray(needs, dtype=np.int64)[best])


def prune_by_influence(graph: FlowGraph, output: NodeKey | None = None, node_share: float = DEFAULT_NODE_SHARE,
                       edge_share: float = DEFAULT_EDGE_SHARE, influence: dict | None = None,
                       index: InfluenceIndex | None = None) -> PrunedGraph:
    """influence: influence_on(graph, output), or index: influence_index(graph, output), when the
    caller has it already (a slider moving over one graph changes only the shares)."""
    node_share, edge_share = check_share("the node share", node_share), check_share("the edge share", edge_share)
    output = _output(graph, output)
    if index is None or index.output != output:
        index = influence_index(graph, output, influence)
    influence, ranked = index.influence, index.ranked
    k = index.kept_count(node_share)
    total = float(index.running[-1]) if ranked else 0.0
    kept = set(ranked[:k])
    cumulative = {key: float(index.running[i]) / total for i, key in enumerate(ranked[:k])}
    kept.add(output)
    cumulative.setdefault(output, influence[output] / total if total else 1.0)

    eligible = index.needs <= k  # [E]: both ends kept
    scores, edges = index.scores[eligible], index.edges[eligible]  # [E'], best first
    held = np.cumsum(scores)  # [E']: summed in order, as a running total would be
    before = np.concatenate(([0.0], held[:-1]))  # [E']: held by the edges above each one
    m = int(np.searchsorted(before, edge_share * held[-1] - 1e-12, side="left")) if len(held) else 0
    kept_edges = [graph.edges[i] for i in np.sort(edges[:m]).tolist()]
    return PrunedGraph(output, node_share, edge_share, frozenset(kept), kept_edges, influence, cumulative)


def _output(graph: FlowGraph, output: NodeKey | None) -> NodeKey:
    key = (canonical_site(output[0]), int(output[1])) if output else graph.output
    graph.node(*key)  # a SiteError naming the node if the graph has none
    return key
