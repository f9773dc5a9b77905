"""A FlowGraph on the wire as columns: node and edge arrays rather than 50,000 JSON objects.

A GPT-2-small graph of 20 tokens has about 4,300 nodes and 48,000 edges; as arrays it is a few
hundred kilobytes that decode without a Python object per number. The graph's vocabulary travels
as the token ids the graph refers to, not the tokenizer's 50,000 strings; its neuron activations
(for the MLP drill-down) stay in the engine, which answers neuron requests itself.
"""
from __future__ import annotations

import numpy as np

K_NONE = -1  # a node's missing target rank (heads and MLPs have none)


def _pairs(rows: list, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids (N, k) int64, values (N, k) float64, counts (N,) int32) of rows of (id, value) tuples."""
    ids = np.zeros((len(rows), k), np.int64)
    values = np.zeros((len(rows), k), np.float64)
    counts = np.zeros(len(rows), np.int32)
    for i, row in enumerate(rows):
        counts[i] = len(row)
        for j, (token, value) in enumerate(row):
            ids[i, j], values[i, j] = token, value
    return ids, values, counts


def _unpairs(ids: np.ndarray, values: np.ndarray, counts: np.ndarray) -> list[tuple]:
    id_rows, value_rows = ids.tolist(), values.tolist()
    return [tuple(zip(id_rows[i][:n], value_rows[i][:n])) for i, n in enumerate(counts.tolist())]


def encode_graph(graph, buffers: list) -> dict:
    from engine.server.codec import encode

    nodes = graph.nodes
    k = max([len(n.top) for n in nodes] + [len(n.promoted) for n in nodes] + [len(n.suppressed) for n in nodes] + [1])
    index = {n.key: i for i, n in enumerate(nodes)}
    referenced = set(graph.tokens) | set(graph.targets)
    for n in nodes:
        referenced.update(t for t, _ in n.top)
        referenced.update(t for t, _ in n.promoted)
        referenced.update(t for t, _ in n.suppressed)
        referenced.add(n.target)
    edge_src = np.fromiter((index[e[0]] for e in graph.edges), np.int32, len(graph.edges))
    edge_dst = np.fromiter((index[e[1]] for e in graph.edges), np.int32, len(graph.edges))
    edge_weight = np.fromiter((e[2] for e in graph.edges), np.float64, len(graph.edges))
    edge_at = {(e[0], e[1]): i for i, e in enumerate(graph.edges)}
    columns = {
        "site": [n.site.short for n in nodes],
        "position": np.array([n.position for n in nodes], np.int32),
        "norm": np.array([n.norm for n in nodes], np.float64),
        "target": np.array([n.target for n in nodes], np.int64),
        "target_prob": np.array([n.target_prob for n in nodes], np.float64),
        "target_rank": np.array([K_NONE if n.target_rank is None else n.target_rank for n in nodes], np.int64),
        "top": _pairs([n.top for n in nodes], k), "promoted": _pairs([n.promoted for n in nodes], k),
        "suppressed": _pairs([n.suppressed for n in nodes], k),
    }
    doc = {
        "tokens": list(graph.tokens), "token_labels": list(graph.token_labels),
        "position_labels": list(graph.position_labels), "n_layers": graph.n_layers, "n_heads": graph.n_heads,
        "targets": list(graph.targets), "output": list(graph.output), "threshold": graph.threshold,
        "parallel": graph.parallel_attn_mlp, "nodes": columns,
        "edges": (edge_src, edge_dst, edge_weight), "route": [edge_at[(e[0], e[1])] for e in graph.route],
        "attention": np.asarray(graph.attention), "vocab": {int(t): graph.vocab[t] for t in sorted(referenced)},
    }
    return encode(doc, buffers)


def decode_graph(value, buffers: list):
    from engine.flow.graph import FlowGraph, FlowNode
    from engine.probed.sites import flow_sites
    from engine.server.codec import decode

    doc = decode(value, buffers)
    cols = doc["nodes"]
    sites = {s.short: s for s in flow_sites(doc["n_layers"], doc["n_heads"], bool(doc["parallel"]))}
    top, promoted, suppressed = (_unpairs(*cols[name]) for name in ("top", "promoted", "suppressed"))
    ranks = cols["target_rank"].tolist()
    nodes = [FlowNode(site=sites[s], position=p, norm=norm, top=top[i], target=t, target_prob=tp,
                      target_rank=None if ranks[i] == K_NONE else ranks[i], promoted=promoted[i],
                      suppressed=suppressed[i])
             for i, (s, p, norm, t, tp) in enumerate(zip(cols["site"], cols["position"].tolist(),
                                                         cols["norm"].tolist(), cols["target"].tolist(),
                                                         cols["target_prob"].tolist()))]
    keys = [n.key for n in nodes]  # shared by the edges, as build.py does
    src, dst, weight = doc["edges"]
    edges = [(keys[s], keys[d], w) for s, d, w in zip(src.tolist(), dst.tolist(), weight.tolist())]
    return FlowGraph(tokens=doc["tokens"], token_labels=doc["token_labels"], position_labels=doc["position_labels"],
                     n_layers=doc["n_layers"], n_heads=doc["n_heads"], nodes=nodes, edges=edges,
                     attention=doc["attention"], targets=doc["targets"], output=tuple(doc["output"]),
                     threshold=doc["threshold"], route=[edges[i] for i in doc["route"]], vocab=doc["vocab"],
                     parallel_attn_mlp=bool(doc["parallel"]))
