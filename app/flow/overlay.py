"""From a FlowGraph to what the diagram draws: node readouts, colours, tooltips, weighted edges.

Plain Python (no Qt): the flow view decides which edges are shown (above the threshold, or the
route only) and this module only translates names. The graph names the residual stream between
blocks x{L}.post; the diagram draws that vector twice, as x{L}.post and x{L+1}.pre, and an edge
that feeds block L+1 is drawn from x{L+1}.pre, the node the block reads.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from app.diagram.layout import DiagramOverlay, NodeKey, _diagram_key
from app.style import target_prob_hex
from engine.probed.sites import aliases

TOOLTIP_TOKENS = 5
MAX_LABEL_CHARS = 6


def token_text(graph, token_id: int) -> str:
    """A token's text, printable: spaces and newlines made visible (large vocabularies have them)."""
    text = str(graph.label(int(token_id)))
    return text.replace("\n", "\\n").replace(" ", "␣") or "∅"


def short_label(graph, token_id: int) -> str:
    text = token_text(graph, token_id)
    return text if len(text) <= MAX_LABEL_CHARS else text[:MAX_LABEL_CHARS - 1] + "…"


def diagram_keys(node_key: NodeKey, n_layers: int) -> list[NodeKey]:
    """The diagram nodes that draw one graph node (x{L}.post is also x{L+1}.pre)."""
    short, pos = node_key
    return [(name, pos) for name in aliases(short, n_layers)]


def node_tooltip(graph, node) -> str:
    """Top tokens with probabilities, the target, and for heads and MLPs what they push."""
    lines = [f"logit lens ({node.site.short} @ {node.position}):"]
    lines += [f"  {token_text(graph, i)!s:>6}  {p:.3f}" for i, p in node.top[:TOOLTIP_TOKENS]]
    target = token_text(graph, node.target)
    if node.target_rank is not None:
        lines.append(f"target {target!r}: rank {node.target_rank}, p {node.target_prob:.3f}")
    else:
        lines.append(f"target {target!r}: p {node.target_prob:.3f}")
    if node.promoted:
        lines.append("promotes " + " ".join(repr(token_text(graph, i)) for i, _ in node.promoted[:3]))
        lines.append("suppresses " + " ".join(repr(token_text(graph, i)) for i, _ in node.suppressed[:3]))
    return "\n".join(lines)


def flow_readouts(graph) -> DiagramOverlay:
    """The per-node part of a graph's overlay, made once per graph: every node labelled by its
    logit lens's top-1 token, residual nodes filled by the target's probability. Tooltips are
    written when hovered (a GPT-2-sized graph has thousands of nodes; formatting every tooltip
    on each redraw held the GUI thread for a quarter of a second)."""
    overlay = DiagramOverlay()
    for node in graph.nodes:
        label = short_label(graph, node.top[0][0]) if node.top else None
        tip = _LazyTooltip(graph, node)
        for key in diagram_keys(node.key, graph.n_layers):
            if label:
                overlay.labels[key] = label
            overlay.tooltips[key] = tip
            if node.kind == "resid":
                overlay.colors[key] = target_prob_hex(node.target_prob)
    return overlay


class _LazyTooltip:
    """node_tooltip(graph, node), formatted on first use."""

    __slots__ = ("graph", "node", "text")

    def __init__(self, graph, node):
        self.graph, self.node, self.text = graph, node, None

    def __call__(self) -> str:
        if self.text is None:
            self.text = node_tooltip(self.graph, self.node)
        return self.text


@dataclass
class PreparedGraph:
    """What every redraw of one graph reuses, made once per graph on the engine link's
    reader thread (app/workers/engine_client.py): on a GPT-2-sized graph (4,344 nodes, 47,808 edges) the readouts
    took 38 ms and the influence on the output 48 ms, which the GUI thread paid on arrival and
    when pruning was switched on; the influence index (engine/flow/prune.py) takes 17 ms now."""

    readouts: DiagramOverlay  # flow_readouts(graph)
    indexes: dict = field(default_factory=dict)  # output node -> influence_index(graph, output)


def route_end(graph, position: int | None) -> NodeKey:
    """Where the route ends: the final residual stream at `position` (the window's selected one),
    or the graph's own output when none is set or it is out of range."""
    site, pos = graph.output
    if position is not None and 0 <= position < len(graph.position_labels):
        pos = position
    return site, pos


def prepare_graph(graph, route_position: int | None = None) -> PreparedGraph:
    """Readouts, and the influence on the node the route ends at (route_end)."""
    from engine.flow.prune import influence_index

    end = route_end(graph, route_position)
    return PreparedGraph(flow_readouts(graph), {end: influence_index(graph, end)})


def flow_overlay(graph, edges, on_route: set | None = None, readouts: DiagramOverlay | None = None) -> DiagramOverlay:
    """The overlay of `graph` showing `edges` (FlowEdges, weights 0..1 as computed: not rescaled).

    readouts: flow_readouts(graph), when the caller keeps it between redraws (the diagram then
    only redraws edges and fading). on_route: graph node keys on the route; the others are faded.
    """
    readouts = readouts or flow_readouts(graph)
    overlay = DiagramOverlay(labels=readouts.labels, colors=readouts.colors, tooltips=readouts.tooltips)
    if on_route is not None:  # every node's diagram keys are the tooltips' keys: dim all but the route's
        shown = {k for key in on_route for k in diagram_keys(key, graph.n_layers)}
        overlay.dim.update(k for k in readouts.tooltips if k not in shown)
    overlay.edges = [(_diagram_key(src, dst), _diagram_key(dst), float(weight)) for src, dst, weight in edges]
    return overlay


def route_nodes(route) -> set:
    """The graph node keys an edge list touches."""
    return {src for src, _, _ in route} | {dst for _, dst, _ in route}


def rank_change(token_id: int, rank: int, before) -> str:
    """How a top token's rank moved since the node before: '▲2 (was 3)', '▼1 (was 1)', '=', or
    'new' when it was not among that node's top tokens; '' when there is no node before."""
    if before is None:
        return ""
    ranks = {int(i): r for r, (i, _) in enumerate(before.top, start=1)}
    was = ranks.get(int(token_id))
    if was is None:
        return f"new (was > {len(before.top)})"
    if was == rank:
        return "="
    return f"{'▲' if was > rank else '▼'}{abs(was - rank)} (was {was})"


def incoming(graph, key: NodeKey, threshold: float, limit: int = 6) -> list:
    """The strongest edges into a graph node at or above the threshold, largest first."""
    edges = [e for e in graph.edges if e[1] == key and e[2] >= threshold]  # (src, dst, weight)
    return sorted(edges, key=lambda e: -e[2])[:limit]
