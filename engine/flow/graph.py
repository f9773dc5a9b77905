"""The flow graph as plain data: nodes with vocabulary readouts, weighted edges, the route, JSON.

Nodes are keyed by (site short name, position). The residual stream between blocks is one
node, named x{L}.post (x0.pre for the embeddings): these are the paper's site names, so a node
is the InversionView site its decoder was trained on; `canonical_site` maps x{L+1}.pre to it.
A parallel-attention model's graph (`parallel_attn_mlp`) has no x{L}.mid: heads, m{L} and the
incoming residual all feed x{L}.post, and m{L} reads the incoming residual.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from engine.errors import SiteError
from engine.probed.sites import Site, canonical_site, flow_sites

JSON_FORMAT = "inversionview-flow"
JSON_VERSION = 1
DEFAULT_THRESHOLD = 0.04

NodeKey = tuple  # (site short name, position)


@dataclass(frozen=True, slots=True)
class FlowNode:
    """One site at one position, read in the vocabulary. Slots and tuples, like the edges: a
    GPT-2-sized graph has 4,344 nodes, and lists and instance dicts stay in every collection pass."""

    site: Site
    position: int
    norm: float  # L2 norm of the vector
    top: tuple  # logit lens: ((token id, probability), ...), most probable first
    target: int  # the target token at this position
    target_prob: float  # its logit-lens probability
    target_rank: int | None  # 1 = the lens's top token; residual nodes only (None for heads, MLPs)
    promoted: tuple  # heads, MLPs: ((token id, direct logit), ...), largest first; () for residual nodes
    suppressed: tuple  # heads, MLPs: ((token id, direct logit), ...), most negative first

    @property
    def key(self) -> NodeKey:
        return (self.site.short, self.position)

    @property
    def kind(self) -> str:
        """"resid", "head" or "mlp"."""
        return {"head": "head", "mlp_out": "mlp"}.get(self.site.kind, "resid")


# An edge is a plain tuple (src, dst, weight): src and dst are NodeKeys, weight the contribution,
# 0..1, normalised per whole (the residual node the edge feeds). Plain rather than a NamedTuple:
# the garbage collector stops tracking an exact tuple of atoms after a pass or two but walks a tuple
# subclass in every full pass, and a GPT-2-sized graph has 48,000 edges. With two such graphs
# alive a full pass (which holds the GIL, so the window waits) took 31 ms with NamedTuples, 18 ms
# with plain tuples, and 8 ms once the edges also shared their node keys (build.py _edges).
FlowEdge = tuple  # (src: NodeKey, dst: NodeKey, weight: float)


def flow_edge(src: NodeKey, dst: NodeKey, weight: float) -> FlowEdge:
    return (src, dst, weight)


@dataclass(frozen=True)
class NeuronReadout:
    """One MLP neuron at one position: how much it writes, and which tokens it pushes."""

    index: int  # the neuron's index in the layer (0..d_mlp-1)
    activation: float  # its activation after the nonlinearity
    out_norm: float  # L2 norm of its output row W_out[index]
    score: float  # |activation| x out_norm: the size of what it writes
    promoted: list[tuple[int, float]]  # (token id, direct logit), largest first
    suppressed: list[tuple[int, float]]  # (token id, direct logit), most negative first


@dataclass
class FlowGraph:
    """The flow graph of one input (docs/design.md §4). Plain Python and numpy, no tensors."""

    tokens: list  # token ids, BOS..EOS
    token_labels: list  # the vocabulary text of each token
    position_labels: list  # the task's label of each position (':' 'A1' ...)
    n_layers: int
    n_heads: int
    nodes: list  # [FlowNode] in forward order (flow_sites), position-minor
    edges: list  # [FlowEdge] every edge (attention: sources j <= i), weight-0 ones too
    attention: np.ndarray  # (n_layers, n_heads, T, T) pattern[L, h, query i, source j]
    targets: list  # target token id per position
    output: NodeKey  # the node the route leads to
    threshold: float  # the route keeps edges with weight >= threshold
    route: list  # [FlowEdge] the edges of the route, forward order
    vocab: Sequence | Mapping = field(repr=False)  # token id -> text
    neuron_acts: np.ndarray | None = field(default=None, repr=False)  # (n_layers, T, d_mlp), for top_neurons
    final_scale: np.ndarray | None = field(default=None, repr=False)  # (T,) the final norm's divisor
    parallel_attn_mlp: bool = False  # attention and MLP both read x{L}.pre: no x{L}.mid node (GPT-NeoX, GPT-J)
    _index: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def node(self, site: str, position: int) -> FlowNode:
        if not self._index:
            self._index.update({n.key: n for n in self.nodes})
        key = (canonical_site(site), position)
        if key not in self._index:
            if self.parallel_attn_mlp and site.endswith(".mid"):
                raise SiteError(f"{site} does not exist in a parallel-attention model (GPT-NeoX, GPT-J): attention "
                                f"and MLP both read {site.removesuffix('.mid')}.pre")
            raise SiteError(f"the flow graph has no node {site} at position {position}")
        return self._index[key]

    def label(self, token_id: int) -> str:
        return self.vocab[token_id]

    def edges_above(self, threshold: float) -> list:
        return [e for e in self.edges if e[2] >= threshold]

    def route_to(self, output: NodeKey | None = None, threshold: float | None = None) -> list:
        output = (canonical_site(output[0]), output[1]) if output else self.output
        self.node(*output)
        return find_route(self.edges, output, self.threshold if threshold is None else threshold)

    # ---- JSON ---------------------------------------------------------------------------
    def to_json(self, threshold: float | None = None) -> str:
        """Nodes with readouts and labels, edges with weight >= threshold (default: the route's; 0 = all)."""
        thr = self.threshold if threshold is None else threshold
        tok = self._token_entry
        nodes = []
        for n in self.nodes:
            nodes.append({
                "site": n.site.short, "hook": n.site.id, "kind": n.kind, "layer": n.site.layer,
                "head": n.site.head, "position": n.position,
                "label": f"{n.site.short} @ {n.position} {self.position_labels[n.position]!r}",
                "norm": _r(n.norm), "top": [tok(i, prob=p) for i, p in n.top],
                "target": tok(n.target, prob=n.target_prob, rank=n.target_rank),
                "promoted": [tok(i, logit=v) for i, v in n.promoted],
                "suppressed": [tok(i, logit=v) for i, v in n.suppressed],
            })
        doc = {
            "format": JSON_FORMAT, "version": JSON_VERSION, "tokens": list(self.tokens),
            "token_labels": list(self.token_labels), "position_labels": list(self.position_labels),
            "n_layers": self.n_layers, "n_heads": self.n_heads,
            **({"parallel_attn_mlp": True} if self.parallel_attn_mlp else {}),  # absent: sequential, as before
            "targets": [tok(t) for t in self.targets],
            "output": {"site": self.output[0], "position": self.output[1]}, "threshold": self.threshold,
            "edge_threshold": thr, "nodes": nodes,
            "edges": [edge_json(e) for e in self.edges if e[2] >= thr],
            "route": [edge_json(e) for e in self.route],
            "attention": np.round(self.attention.astype(np.float64), 6).tolist(),
        }
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))

    def _token_entry(self, token_id: int, **extra) -> dict:
        entry = {"id": int(token_id), "token": self.vocab[token_id]}
        entry.update({k: (_r(v) if isinstance(v, float) else v) for k, v in extra.items()})
        return entry

    @classmethod
    def from_json(cls, text: str) -> FlowGraph:
        """A graph read back from to_json (without the neuron activations: top_neurons re-runs the model)."""
        try:
            return cls._from_doc(json.loads(text))
        except (KeyError, TypeError, IndexError, AttributeError) as e:
            raise ValueError(f"not a readable flow graph file ({type(e).__name__}: {e})") from None

    @classmethod
    def _from_doc(cls, doc: dict) -> FlowGraph:
        if doc.get("format") != JSON_FORMAT:
            raise ValueError(f"not a flow graph file (format {doc.get('format')!r})")
        vocab: dict = {}
        for n in doc["nodes"]:
            for entry in (*n["top"], n["target"], *n["promoted"], *n["suppressed"]):
                vocab[entry["id"]] = entry["token"]
        vocab.update({t["id"]: t["token"] for t in doc["targets"]})
        parallel = doc.get("parallel_attn_mlp", False) is True
        sites = {s.short: s for s in flow_sites(doc["n_layers"], doc["n_heads"], parallel)}
        nodes = [FlowNode(site=sites[n["site"]], position=n["position"], norm=n["norm"],
                          top=tuple((e["id"], e["prob"]) for e in n["top"]), target=n["target"]["id"],
                          target_prob=n["target"]["prob"], target_rank=n["target"]["rank"],
                          promoted=tuple((e["id"], e["logit"]) for e in n["promoted"]),
                          suppressed=tuple((e["id"], e["logit"]) for e in n["suppressed"])) for n in doc["nodes"]]
        return cls(tokens=doc["tokens"], token_labels=doc["token_labels"], position_labels=doc["position_labels"],
                   n_layers=doc["n_layers"], n_heads=doc["n_heads"], nodes=nodes,
                   edges=[_edge_from(e) for e in doc["edges"]], attention=np.array(doc["attention"], np.float32),
                   targets=[t["id"] for t in doc["targets"]],
                   output=(doc["output"]["site"], doc["output"]["position"]), threshold=doc["threshold"],
                   route=[_edge_from(e) for e in doc["route"]], vocab=vocab, parallel_attn_mlp=parallel)


def _r(x: float) -> float:
    return round(float(x), 6)


def edge_json(e: FlowEdge) -> dict:
    (src_site, src_pos), (dst_site, dst_pos), weight = e
    return {"src": [src_site, src_pos], "dst": [dst_site, dst_pos], "weight": _r(weight)}


def _edge_from(d: dict) -> FlowEdge:
    return (d["src"][0], d["src"][1]), (d["dst"][0], d["dst"][1]), d["weight"]


def find_route(edges: list, output: NodeKey, threshold: float) -> list:
    """The edges with weight >= threshold from which output can be reached along such edges.

    Found backwards from output; returned in the order of `edges` (forward order).
    """
    incoming: dict = {}
    for i, (_, dst, weight) in enumerate(edges):
        if weight >= threshold:
            incoming.setdefault(dst, []).append(i)
    seen, stack, keep = {output}, [output], set()
    while stack:
        for i in incoming.get(stack.pop(), ()):
            keep.add(i)
            src = edges[i][0]
            if src not in seen:
                seen.add(src)
                stack.append(src)
    return [edges[i] for i in sorted(keep)]
