"""The flow graph of one input (docs/design.md §4: VISIT and the LM Transparency Tool).

One forward pass with only the hooks needed gives, for every residual node, head and MLP at
every position, its logit-lens readout, and the contribution weights of the edges between them;
the route is the part of the graph above a threshold that leads to an output node.

    graph = flow_for_query(model, "Baiaigiaaggi|g:3")      # a ProbedModel and a task query
    graph = build_flow(bridge, ids, vocab)                  # any TransformerBridge
    graph.node("x1.post", 14).top; graph.route; graph.to_json()
    top_neurons(bridge, graph, layer=1, position=14)        # VISIT's MLP drill-down

The parts live in contributions.py (forward pass, decomposition, contributions), readout.py
(logit lens, direct logits, neurons) and graph.py (the dataclasses, route and JSON).

A `cancel` event stops a graph between layers (of the forward pass, the decomposition, the
vocabulary sweep and the edges): the app's flow thread drops a graph nobody waits for any more.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from engine.errors import Cancelled
from engine.flow.graph import (
    DEFAULT_THRESHOLD,
    FlowEdge,
    FlowGraph,
    FlowNode,
    NeuronReadout,
    NodeKey,
    find_route,
    flow_edge,
)
from engine.probed.sites import canonical_site, flow_sites, resid_before
from engine.tasks.base import TaskInputError
from engine.threads import one_thread_if_small

if TYPE_CHECKING:
    from engine.probed.model import ProbedModel
    from engine.runtime import TransformerBridge

__all__ = ["DEFAULT_THRESHOLD", "FlowEdge", "FlowGraph", "FlowNode", "NeuronReadout", "build_flow", "flow_edge",
           "default_output_position", "find_route", "flow_for_query", "flow_sites", "resolve_target", "top_neurons"]


def build_flow(bridge: TransformerBridge, ids: Sequence[int], vocab: Sequence[str], *,
               position_labels: Sequence[str] | None = None, target: int | Sequence[int] | None = None,
               output: NodeKey | None = None, threshold: float = DEFAULT_THRESHOLD, top_k: int = 5,
               fast: bool | None = None, cancel: threading.Event | None = None) -> FlowGraph:
    """The flow graph of one token sequence.

    ids: the token ids (T of them, BOS first when the model has one); vocab: the text of every
    token id (d_vocab strings). The graph has, for every node (site, position), its logit-lens
    top_k tokens with their probabilities (0 to 1) and its norm, and for every edge its
    contribution weight (0 to 1: its share of what reaches the node); the route keeps the edges
    of weight >= threshold that lead to the output node.

    target: None = the model's own prediction (argmax of its logits) at each position; an int =
    that token id at every position; a sequence = one id per position. output: the route's end
    node, default (last x{L}.post, last position). fast: None = bfloat16 vocabulary sweep for big
    vocabularies when the hardware has it (readout.py), False = float32 throughout. cancel: a
    threading.Event; once set, Cancelled is raised at the next layer boundary.
    """
    from engine.runtime import torch

    cfg = bridge.cfg
    on_cpu = next(bridge.parameters()).device.type == "cpu"
    small = one_thread_if_small(cfg.d_model, max(cfg.d_mlp or 0, cfg.d_vocab), on_cpu)
    with small, torch.inference_mode():
        return _build_flow(bridge, ids, vocab, position_labels, target, output, threshold, top_k, fast,
                           checker(cancel))


def checker(cancel):
    """A function that raises Cancelled once `cancel` (a threading.Event, or None: never) is set."""
    def check() -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled()
    return check


def _build_flow(bridge, ids, vocab, position_labels, target, output, threshold, top_k, fast, check) -> FlowGraph:
    from engine.flow.contributions import capture, layer_flow
    from engine.flow.readout import Unembed, read_vocab
    from engine.runtime import torch

    ids = [int(i) for i in ids]
    t, n_layers, n_heads = len(ids), bridge.cfg.n_layers, bridge.cfg.n_heads
    device = next(bridge.parameters()).device
    cap = capture(bridge, torch.tensor([ids], device=device), check=check)
    layers = []
    for L in range(n_layers):
        check()
        layers.append(layer_flow(bridge, cap, L))
    targets = _targets(target, cap.logits, t)
    sites = flow_sites(n_layers, n_heads, cap.parallel)
    out_key = (canonical_site(output[0]), int(output[1])) if output else (f"x{n_layers - 1}.post", t - 1)

    # node vectors in site order (S, T, d), then read components first (they need direct logits)
    vecs = [cap.resid_pre0]
    for L, lf in enumerate(layers):
        vecs += [*lf.heads, *([] if cap.parallel else [cap.resid_mid[L]]), cap.mlp_out[L], cap.resid_post[L]]
    vecs = torch.stack(vecs)  # (S, T, d)
    is_comp = torch.tensor([s.kind in ("head", "mlp_out") for s in sites], device=device)
    order = torch.cat([torch.nonzero(is_comp)[:, 0], torch.nonzero(~is_comp)[:, 0]])  # (S,) components first
    n_comp_rows = int(is_comp.sum()) * t
    unembed = Unembed.of(bridge, fast=fast)
    final_scale = unembed.norm.scale(cap.resid_post[-1])  # (T,)
    pos = torch.arange(t, device=device).repeat(len(sites))  # (S*T,) position of each row
    target_t = torch.tensor(targets, device=device)
    rows = vecs[order].reshape(-1, vecs.shape[-1])  # (S*T, d): row r is site order[r // T], position r % T
    ro = read_vocab(unembed, rows, final_scale[pos], target_t[pos], n_comp_rows, top_k, check=check)
    norms = rows.norm(dim=-1).cpu().numpy()

    nodes: list = [None] * (len(sites) * t)
    top_ids, top_p = ro.top_ids.tolist(), ro.top_probs.tolist()
    tprob, trank = ro.target_prob.tolist(), ro.target_rank.tolist()
    p_ids, p_l, s_ids, s_l = (a.tolist() for a in (ro.promoted_ids, ro.promoted_logits,
                                                   ro.suppressed_ids, ro.suppressed_logits))
    for r, s_index in enumerate(np.repeat(order.cpu().numpy(), t)):
        site, p = sites[s_index], r % t
        comp = r < n_comp_rows
        nodes[s_index * t + p] = FlowNode(
            site=site, position=p, norm=float(norms[r]), top=tuple(zip(top_ids[r], top_p[r])), target=targets[p],
            target_prob=tprob[r], target_rank=None if comp else trank[r],
            promoted=tuple(zip(p_ids[r], p_l[r])) if comp else (),
            suppressed=tuple(zip(s_ids[r], s_l[r])) if comp else ())

    edges = _edges(layers, n_heads, t, check)
    graph = FlowGraph(
        tokens=ids, token_labels=[vocab[i] for i in ids],
        position_labels=list(position_labels) if position_labels is not None else [str(i) for i in range(t)],
        n_layers=n_layers, n_heads=n_heads, nodes=nodes, edges=edges,
        attention=torch.stack(cap.pattern).cpu().numpy(), targets=targets, output=out_key,
        threshold=float(threshold), route=[], vocab=vocab,
        neuron_acts=torch.stack(cap.neuron_acts).cpu().numpy(), final_scale=final_scale.cpu().numpy(),
        parallel_attn_mlp=cap.parallel)
    graph.route = graph.route_to(out_key)  # checks that the output node exists
    return graph


def _targets(target, logits, t: int) -> list:
    v = logits.shape[-1]
    if target is None:
        targets = logits.argmax(-1).tolist()
    elif isinstance(target, (int, np.integer)):
        targets = [int(target)] * t
    else:
        targets = [int(x) for x in target]
        if len(targets) != t:
            raise TaskInputError(f"{len(targets)} target tokens given for an input of {t} positions")
    bad = [x for x in targets if not 0 <= x < v]
    if bad:
        raise TaskInputError(f"target token id {bad[0]} is out of range; the vocabulary has ids 0-{v - 1}")
    return targets


def _edges(layers: list, n_heads: int, t: int, check=lambda: None) -> list:
    """Every edge, layer by layer: sources -> heads, heads -> x.mid, x.pre -> x.mid, then the MLP's.
    A parallel block has no x.mid: heads, x.pre and m all feed x.post, and the MLP reads x.pre.

    Each node key is one tuple shared by all its edges: a GPT-2-sized graph has 48,000 edges, and
    a key tuple each made 96,000 more objects for the collector to walk until it untracked them."""
    edges = []
    qi, sj = np.tril_indices(t)  # causal pairs: query i, source j <= i
    qi_list, sj_list = qi.tolist(), sj.tolist()

    made: dict = {}

    def keys(site: str) -> list:  # the node keys of one site, by position (x{L}.post feeds block L+1 too)
        if site not in made:
            made[site] = [(site, i) for i in range(t)]
        return made[site]

    for L, lf in enumerate(layers):
        check()
        pre, mlp, post = keys(resid_before(L)), keys(f"m{L}"), keys(f"x{L}.post")
        mid = post if lf.parallel else keys(f"x{L}.mid")  # the attention step's whole
        aw = lf.attn_weight.cpu().numpy()  # (H, T_i, T_j)
        heads = [keys(f"a{L}.{h}") for h in range(n_heads)]
        for h in range(n_heads):
            head = heads[h]
            edges += [(pre[j], head[i], w) for i, j, w in zip(qi_list, sj_list, aw[h, qi, sj].tolist())]
        for h, row in enumerate(aw.sum(-1).tolist()):  # a head's edge carries its sources' total
            edges += [(heads[h][i], mid[i], w) for i, w in enumerate(row)]
        edges += [(pre[i], mid[i], w) for i, w in enumerate(lf.attn_resid_weight.tolist())]
        mw = lf.mlp_weight.tolist()
        mlp_input = pre if lf.parallel else mid
        edges += [(mlp_input[i], mlp[i], w) for i, w in enumerate(mw)]
        edges += [(mlp[i], post[i], w) for i, w in enumerate(mw)]
        if not lf.parallel:
            edges += [(mid[i], post[i], w) for i, w in enumerate(lf.mlp_resid_weight.tolist())]
    return edges


# ---- a task query ------------------------------------------------------------------------------
def default_output_position(task, ids: Sequence[int]) -> int:
    """The last position whose prediction the model was trained on (counting: ':', which predicts
    the count; addition: the last answer digit, which predicts E); else the last before EOS/PAD."""
    trained = np.nonzero(task.loss_mask(np.array([ids]))[0])[0]
    if len(trained):
        return int(trained[-1])
    special = task.special_mask(np.array([ids]))[0]
    plain = [i for i, s in enumerate(special) if not s or ids[i] == task.bos_id]
    return plain[-1] if plain else len(ids) - 1


def resolve_target(task, token: str | int | None) -> int | None:
    """A target given as the token's text ('3') or, failing that, its id."""
    if token is None or isinstance(token, int):
        return token
    found = task.vocab.token_id(token)
    if found is not None:
        return found
    if token.isascii() and token.isdigit() and len(token) < 10 and int(token) < task.vocab.vocab_size:
        return int(token)
    raise TaskInputError(f"unknown target token {token!r}; give a token of {task.vocab.describe()} or an id")


def flow_for_query(model: ProbedModel, text: str, *, target: str | int | Sequence[int] | None = None,
                   position: int | str | None = None, threshold: float = DEFAULT_THRESHOLD,
                   top_k: int = 5, cancel: threading.Event | None = None) -> FlowGraph:
    """The flow graph of a task query on a ProbedModel; the route ends at the final residual of
    `position` (index or label; default: default_output_position). target: a token's text or id,
    one id per position, or None (the model's own prediction at each position); threshold: the
    route's least edge weight (0 to 1); top_k: tokens read out per node; cancel: as build_flow's."""
    task = model.task
    ids = task.parse_query(text)
    pos = default_output_position(task, ids) if position is None else task.resolve_position(ids, position)
    if isinstance(target, str):
        target = resolve_target(task, target)
    return build_flow(model.bridge, ids, task.vocab.strings(), position_labels=task.position_labels(ids),
                      target=target, output=(f"x{model.config.n_layers - 1}.post", pos), threshold=threshold,
                      top_k=top_k, cancel=cancel)


def top_neurons(bridge, graph: FlowGraph, layer: int, position: int, n_neurons: int = 10,
                n_tokens: int = 5) -> list[NeuronReadout]:
    """VISIT's drill-down of m{layer} at position: its neurons by |activation| x ||W_out row||,
    each with the tokens its output promotes and suppresses (direct logits, as for the nodes)."""
    from engine.runtime import torch

    with torch.inference_mode():
        return _top_neurons(bridge, graph, layer, position, n_neurons, n_tokens)


def _top_neurons(bridge, graph, layer, position, n_neurons, n_tokens) -> list[NeuronReadout]:
    from engine.flow.contributions import capture
    from engine.flow.readout import Unembed, top_neuron_readouts
    from engine.runtime import torch

    if not (0 <= layer < graph.n_layers and 0 <= position < len(graph.tokens)):
        raise TaskInputError(f"no MLP m{layer} at position {position} in this graph")
    device = next(bridge.parameters()).device
    unembed = Unembed.of(bridge, fast=False)  # a handful of rows: float32 throughout
    acts, scale = graph.neuron_acts, graph.final_scale
    if acts is None or scale is None:  # a graph read from JSON: run the model again
        cap = capture(bridge, torch.tensor([graph.tokens], device=device))
        acts = torch.stack(cap.neuron_acts).cpu().numpy()
        scale = unembed.norm.scale(cap.resid_post[-1]).cpu().numpy()
    w_out = bridge.blocks[layer].mlp.W_out.detach().float()  # (d_mlp, d_model)
    return top_neuron_readouts(unembed, torch.from_numpy(acts[layer, position]).to(device), w_out,
                               float(scale[position]), n_neurons, n_tokens)
