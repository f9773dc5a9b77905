"""The flow graph in the graph JSON that attribution-graph viewers read (Neuronpedia, circuit-tracer).

That format has four parts: `metadata` (the prompt and its tokens, the node threshold),
`qParams` (the viewer's pinned nodes and groupings: empty here), `nodes` and `links`
(source, target, weight). Its nodes were designed for transcoder features; ours are model
components, mapped as follows:

- x0.pre, the embedding at a position: feature_type "embedding", layer "E" (node_id E_<token>_<pos>);
- the output position's top tokens: feature_type "logit", layer n_layers + 1, one node per token
  with its probability, linked from the output residual node by that probability;
- every other node keeps its component as its feature_type ("attention head", "attention",
  "mlp", "residual") and its layer; its node_id is <layer>_<component>_<pos> with component 0..H-1
  for the heads, then attention out, MLP out, the residual after attention (none in a
  parallel-attention model) and after the MLP.
  A viewer draws these as ordinary feature nodes; the clerp (the label a viewer shows) names the
  site and its logit-lens top token.

Only the graph pruned by influence goes in (attribution-graph viewers expect a pruned graph;
a full GPT-2 graph has tens of thousands of edges), plus every position's embedding node, as
circuit-tracer keeps them: the prompt's tokens are always on the viewer's bottom row. A node's `influence` is, as in
circuit-tracer's files, the cumulative share of the total influence up to and including it.
"""
from __future__ import annotations

import re

from engine.flow.graph import FlowGraph
from engine.flow.prune import PrunedGraph

SCHEMA_VERSION = 1


def slug_for(name: str) -> str:
    """A graph's slug (lowercase words joined by hyphens) from a file name."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "flow-graph"
LOGITS = 5  # output tokens drawn as logit nodes


def _component(graph: FlowGraph, node) -> tuple[str, int]:
    """(feature_type, component index within the layer) of a non-embedding node."""
    site, h = node.site, graph.n_heads
    return {"head": ("attention head", site.head if site.head is not None else 0), "attn_out": ("attention", h),
            "mlp_out": ("mlp", h + 1), "resid_mid": ("residual", h + 2)}.get(site.kind, ("residual", h + 3))


def node_id(graph: FlowGraph, node) -> str:
    if node.site.short == "x0.pre":
        return f"E_{graph.tokens[node.position]}_{node.position}"
    _, component = _component(graph, node)
    return f"{node.site.layer}_{component}_{node.position}"


def neuronpedia_graph(graph: FlowGraph, pruned: PrunedGraph, slug: str, scan: str, prompt: str) -> dict:
    """The document (a dict ready for json.dumps)."""
    label = graph.label
    nodes, ids = [], {}
    for node in graph.nodes:
        if node.key not in pruned.nodes and node.site.short != "x0.pre":
            continue
        nid = node_id(graph, node)
        ids[node.key] = nid
        top = f"{label(node.top[0][0])!r} {node.top[0][1]:.2f}" if node.top else "?"
        if node.site.short == "x0.pre":
            kind, layer, feature = "embedding", "E", node.position
        else:
            kind, feature = _component(graph, node)
            layer = str(node.site.layer)
        nodes.append({
            "node_id": nid, "jsNodeId": nid, "feature": feature, "layer": layer, "ctx_idx": node.position,
            "feature_type": kind, "token_prob": 0.0, "is_target_logit": False, "run_idx": 0,
            "reverse_ctx_idx": len(graph.tokens) - 1 - node.position,
            "clerp": f"{node.site.short} @ {node.position} {graph.token_labels[node.position]!r}: lens {top}",
            "influence": round(pruned.cumulative.get(node.key, 0.0), 6), "activation": round(node.norm, 6),
        })
    links = [{"source": ids[src], "target": ids[dst], "weight": round(float(weight), 6)}
             for src, dst, weight in pruned.edges if src in ids and dst in ids]

    out = graph.node(*pruned.output)
    out_id = ids[pruned.output]
    for token, prob in out.top[:LOGITS]:
        nid = f"{graph.n_layers + 1}_{token}_{out.position}"
        nodes.append({
            "node_id": nid, "jsNodeId": nid, "feature": int(token), "layer": str(graph.n_layers + 1),
            "ctx_idx": out.position, "feature_type": "logit", "token_prob": round(float(prob), 6),
            "is_target_logit": int(token) == int(out.target), "run_idx": 0,
            "reverse_ctx_idx": len(graph.tokens) - 1 - out.position,
            "clerp": f"Output {label(token)!r} (p={prob:.3f})", "influence": None, "activation": None,
        })
        links.append({"source": out_id, "target": nid, "weight": round(float(prob), 6)})
    metadata = {
        "slug": slug, "scan": scan, "transcoder_list": [], "prompt_tokens": list(graph.token_labels),
        "prompt": prompt, "node_threshold": pruned.node_share, "schema_version": SCHEMA_VERSION,
        "info": {"generator": "InversionView Studio", "edge_threshold": pruned.edge_share,
                 "nodes": "model components (heads, attention, MLPs, residual streams), not transcoder features",
                 "output": {"site": pruned.output[0], "position": pruned.output[1]}},
    }
    qparams = {"pinnedIds": [], "supernodes": [], "linkType": "both", "clickedId": "", "sg_pos": ""}
    return {"metadata": metadata, "qParams": qparams, "nodes": nodes, "links": links}
