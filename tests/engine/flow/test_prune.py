"""Pruning the flow graph by influence on the output (engine/flow/prune.py).

The influence is recomputed here by linear algebra, (I - A^T)^-1 e_out over the renormalised
weight matrix, not by the backward sweep under test.
"""
import numpy as np
import pytest
import torch

from engine.flow.build import flow_for_query
from engine.flow.graph import flow_edge
from engine.flow.prune import influence_index, influence_on, prune_by_influence
from engine.probed.model import PAPER_CONFIGS, build_probed


@pytest.fixture(scope="module", params=["counting", "addition"])
def graph(request):
    model = build_probed(PAPER_CONFIGS[request.param], seed=5)
    text = "Baiaigiaaggi|g:3" if request.param == "counting" else "B615+861=1476"
    with torch.no_grad():
        return flow_for_query(model, text)


def solved_influence(graph, output):
    keys = [n.key for n in graph.nodes]
    index = {k: i for i, k in enumerate(keys)}
    a = np.zeros((len(keys), len(keys)))  # a[dst, src] = the share of dst's input that src supplies
    for e in graph.edges:
        a[index[e[1]], index[e[0]]] += e[2]
    totals = a.sum(axis=1, keepdims=True)
    a = np.divide(a, totals, out=np.zeros_like(a), where=totals > 0)
    target = np.zeros(len(keys))
    target[index[output]] = 1.0
    return dict(zip(keys, np.linalg.solve(np.eye(len(keys)) - a.T, target)))


def test_influence_is_the_share_of_the_output_through_every_path(graph):
    got = influence_on(graph)
    want = solved_influence(graph, graph.output)
    assert got.keys() == want.keys()
    assert all(abs(got[k] - want[k]) < 1e-9 for k in got)
    # every residual stream at the output position carries it all: the output is a sum of them
    site, pos = graph.output
    assert got[("x0.pre", pos)] + sum(got[("x0.pre", p)] for p in range(pos)) == pytest.approx(1.0)
    later = [k for k in got if k[1] > pos]
    assert later and all(got[k] == 0 for k in later)  # a causal model: later tokens cannot matter


def test_nodes_listed_position_by_position_give_the_same_influence(graph):
    """The sweep goes a site at a time: the builder lists each site's positions together. In
    another forward order (position by position) the groups are single nodes: the same values."""
    from dataclasses import replace

    by_position = replace(graph, nodes=sorted(graph.nodes, key=lambda n: n.position))  # stable: forward per position
    got = influence_on(by_position)
    want = solved_influence(graph, graph.output)
    assert all(abs(got[k] - want[k]) < 1e-9 for k in want)
    assert got == influence_on(graph)


def test_an_edge_inside_one_site_sends_the_sweep_node_by_node(graph):
    """No builder makes one, but a chain x0.pre@0 -> @1 -> @2 inside one site must still carry
    everything to its end: a site-at-a-time sweep would read @1 before it was computed."""
    from dataclasses import replace

    nodes = [n for n in graph.nodes if n.key in {("x0.pre", 0), ("x0.pre", 1), ("x0.pre", 2)}]
    edges = [flow_edge(("x0.pre", 0), ("x0.pre", 1), 0.5), flow_edge(("x0.pre", 1), ("x0.pre", 2), 0.5)]
    chain = replace(graph, nodes=nodes, edges=edges, output=("x0.pre", 2))
    assert influence_on(chain) == {("x0.pre", 0): 1.0, ("x0.pre", 1): 1.0, ("x0.pre", 2): 1.0}


def test_the_kept_nodes_are_the_fewest_that_hold_the_share(graph):
    influence = influence_on(graph)
    total = sum(influence.values())
    pruned = prune_by_influence(graph, node_share=0.8, edge_share=0.98)
    kept = sorted(pruned.nodes, key=lambda k: -influence[k])
    held = sum(influence[k] for k in kept)
    assert held >= 0.8 * total - 1e-9
    assert held - influence[kept[-1]] < 0.8 * total  # one node fewer would not do
    dropped = [k for k in influence if k not in pruned.nodes and influence[k] > 0]
    assert dropped and max(influence[k] for k in dropped) <= influence[kept[-1]] + 1e-12
    assert graph.output in pruned.nodes
    assert max(pruned.cumulative.values()) == pytest.approx(held / total)


def test_the_kept_edges_join_kept_nodes_and_hold_the_edge_share(graph):
    pruned = prune_by_influence(graph, node_share=0.8, edge_share=0.9)
    influence, into = pruned.influence, {}
    for e in graph.edges:
        into[e[1]] = into.get(e[1], 0.0) + e[2]
    score = {e: e[2] / into[e[1]] * influence[e[1]] for e in graph.edges
             if e[2] > 0 and e[0] in pruned.nodes and e[1] in pruned.nodes}
    kept = set(pruned.edges)
    assert kept <= set(score)
    assert sum(score[e] for e in kept) >= 0.9 * sum(score.values()) - 1e-9
    assert min(score[e] for e in kept) >= max((score[e] for e in score if e not in kept), default=0) - 1e-12
    order = {e: i for i, e in enumerate(graph.edges)}
    assert [order[e] for e in pruned.edges] == sorted(order[e] for e in pruned.edges)
    everything = prune_by_influence(graph, node_share=1.0, edge_share=1.0)
    assert len(everything.edges) > len(pruned.edges) and len(everything.nodes) > len(pruned.nodes)


def test_one_index_serves_every_share_and_more_share_keeps_more(graph):
    """The slider re-prunes from one influence_index: the same result as pruning afresh, at
    every share, and a larger share never drops a node or an edge."""
    index = influence_index(graph)
    last_nodes, last_edges = set(), set()
    for node_share in (0.05, 0.3, 0.5, 0.8, 0.95, 1.0):
        again = prune_by_influence(graph, node_share=node_share, edge_share=1.0, index=index)
        fresh = prune_by_influence(graph, node_share=node_share, edge_share=1.0)
        assert (again.nodes, again.edges, again.cumulative) == (fresh.nodes, fresh.edges, fresh.cumulative)
        assert last_nodes <= again.nodes and last_edges <= set(again.edges)
        last_nodes, last_edges = again.nodes, set(again.edges)
    other = (graph.output[0], 0)  # an index made for another output is not used for this one
    assert prune_by_influence(graph, other, index=index).influence == influence_on(graph, other)


def test_a_hand_made_graph(graph):
    """x feeds h (all of h's input) and y; y's input is 1/4 from h and 3/4 from x: x's influence
    is 3/4 + 1/4 x 1 = 1, h's 1/4."""
    from dataclasses import replace

    nodes = [n for n in graph.nodes if n.key in {("x0.pre", 0), ("a0.0", 0), ("x0.mid", 0)}]
    edges = [flow_edge(("x0.pre", 0), ("a0.0", 0), 0.3), flow_edge(("a0.0", 0), ("x0.mid", 0), 0.25),
             flow_edge(("x0.pre", 0), ("x0.mid", 0), 0.75)]
    tiny = replace(graph, nodes=nodes, edges=edges, output=("x0.mid", 0))
    assert influence_on(tiny) == {("x0.pre", 0): 1.0, ("a0.0", 0): 0.25, ("x0.mid", 0): 1.0}
    pruned = prune_by_influence(tiny, node_share=0.5, edge_share=1.0)
    assert pruned.nodes == {("x0.pre", 0), ("x0.mid", 0)}
    assert pruned.edges == [edges[2]]


@pytest.mark.parametrize("share", [0, -0.1, 1.5])
def test_a_share_outside_0_1_is_one_clear_error(graph, share):
    with pytest.raises(ValueError, match=r"must be a share in \(0, 1\]"):
        prune_by_influence(graph, node_share=share)
