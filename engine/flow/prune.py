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


def prune_by_influence(graph: FlowGraph, output: NodeKey | None = None, node_share: float = DEFAULT_NODE_SHARE,
                       edge_share: float = DEFAULT_EDGE_SHARE, influence: dict | None = None) -> PrunedGraph:
    """influence: influence_on(graph, output) when the caller has it already (a slider moving
    over one graph changes only the shares)."""
    node_share, edge_share = check_share("the node share", node_share), check_share("the edge share", edge_share)
    output = _output(graph, output)
    influence = influence if influence is not None else influence_on(graph, output)
    ranked = sorted((k for k, v in influence.items() if v > 0), key=lambda k: -influence[k])
    total = sum(influence[k] for k in ranked)
    kept, cumulative, running = set(), {}, 0.0
    for key in ranked:
        if running >= node_share * total - 1e-12:
            break
        running += influence[key]
        kept.add(key)
        cumulative[key] = running / total
    kept.add(output)
    cumulative.setdefault(output, influence[output] / total if total else 1.0)

    incoming_total = _incoming_totals(graph)
    scored = [(i, weight / incoming_total[dst] * influence[dst]) for i, (src, dst, weight) in enumerate(graph.edges)
              if weight > 0 and src in kept and dst in kept]
    scored.sort(key=lambda item: -item[1])
    edge_total = sum(score for _, score in scored)
    keep_edges, running = [], 0.0
    for i, score in scored:
        if running >= edge_share * edge_total - 1e-12 or score <= 0:
            break
        running += score
        keep_edges.append(i)
    edges = [graph.edges[i] for i in sorted(keep_edges)]
    return PrunedGraph(output, node_share, edge_share, frozenset(kept), edges, influence, cumulative)


def _output(graph: FlowGraph, output: NodeKey | None) -> NodeKey:
    key = (canonical_site(output[0]), int(output[1])) if output else graph.output
    graph.node(*key)  # a SiteError naming the node if the graph has none
    return key
