"""The flow graph of a parallel-attention model (GPT-NeoX / Pythia): attention and the MLP both read
x{L}.pre and x{L}.post = x{L}.pre + attn{L} + m{L}, so a block is one contribution step and there
is no x{L}.mid (docs/design.md §4, §7)."""
from __future__ import annotations

import json

import pytest
import torch

from engine.errors import SiteError
from engine.flow.build import flow_for_query, top_neurons
from engine.flow.contributions import capture, contributions, head_terms, layer_flow
from engine.flow.graph import FlowGraph
from engine.flow.neuronpedia import neuronpedia_graph
from engine.flow.prune import influence_on, prune_by_influence
from engine.probed.sites import resid_before
from engine.store.folders import find_model, load_probed
from tests.engine.helpers import make_text_folder

PROMPT = "When Mary and John went to the store, John gave a drink to"


@pytest.fixture(scope="module")
def neox(tmp_path_factory):
    folder = make_text_folder(tmp_path_factory.mktemp("neox") / "tiny-neox", "neox", n_ctx=32)
    model = load_probed(find_model(str(folder)))
    return model, flow_for_query(model, PROMPT, top_k=3)


def test_a_parallel_block_is_one_step_into_x_post_and_the_mlp_reads_x_pre(neox):
    model, graph = neox
    assert model.config.parallel_attn_mlp and graph.parallel_attn_mlp
    assert not [n for n in graph.nodes if n.site.kind == "resid_mid"]
    t, n_layers, n_heads = len(graph.tokens), graph.n_layers, graph.n_heads
    assert len(graph.nodes) == (1 + n_layers * (n_heads + 2)) * t
    into: dict = {}
    for e in graph.edges:
        into.setdefault(e[1], []).append(e)
    for L in range(n_layers):
        pre = resid_before(L)
        for i in range(t):
            (mlp_in,) = into[(f"m{L}", i)]  # the MLP's one input: the block's incoming residual
            assert mlp_in[0] == (pre, i)
            parts = into[(f"x{L}.post", i)]  # heads, the MLP and the incoming residual, summing to 1
            assert {e[0][0] for e in parts} == {*(f"a{L}.{h}" for h in range(n_heads)), f"m{L}", pre}
            assert sum(e[2] for e in parts) == pytest.approx(1, abs=1e-4)
            m_out = next(e for e in parts if e[0][0] == f"m{L}")
            assert m_out[2] == pytest.approx(mlp_in[2])
    with pytest.raises(SiteError, match="x0.mid does not exist in a parallel-attention model"):
        graph.node("x0.mid", 3)


def test_the_parts_are_the_lm_transparency_rule_on_x_post(neox):
    """Heads' terms + m + (x.pre + b_O) add up to x.post, and the weights follow
    c_i = max(||w||_1 - ||w - p_i||_1, 0), normalised."""
    model, graph = neox
    bridge = model.bridge
    cap = capture(bridge, torch.tensor([graph.tokens]))
    assert cap.parallel and cap.resid_mid == []
    L, i = 1, len(graph.tokens) - 1
    attn = bridge.blocks[L].attn
    terms = head_terms(cap.pattern[L], cap.v[L], attn.W_O.detach().float())[:, i, : i + 1]  # (H, j, d)
    x_pre, x_post, mlp = cap.resid_post[L - 1][i], cap.resid_post[L][i], cap.mlp_out[L][i]
    b_o = attn.b_O.detach().float()
    parts = torch.cat([terms.reshape(-1, terms.shape[-1]), mlp[None], (x_pre + b_o)[None]])
    torch.testing.assert_close(parts.sum(0), x_post, atol=1e-4, rtol=1e-4)
    expected = contributions((x_post - parts).abs().sum(-1), x_post.abs().sum(-1), parts.abs().sum(-1))
    lf = layer_flow(bridge, cap, L)
    got = torch.cat([lf.attn_weight[:, i, : i + 1].reshape(-1), lf.mlp_weight[i:i + 1], lf.attn_resid_weight[i:i + 1]])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    assert lf.mlp_resid_weight is None


def test_pruning_neuronpedia_json_and_neurons_work_on_a_parallel_graph(neox):
    model, graph = neox
    influence = influence_on(graph)
    assert influence[graph.output] == 1.0 and influence[("x0.pre", graph.output[1])] > 0
    pruned = prune_by_influence(graph, influence=influence)
    assert graph.output in pruned.nodes and pruned.edges
    assert all(e[0] in pruned.nodes and e[1] in pruned.nodes for e in pruned.edges)
    doc = neuronpedia_graph(graph, pruned, "neox", "tiny-neox", PROMPT)
    ids = {n["node_id"] for n in doc["nodes"]}
    assert all(link["source"] in ids and link["target"] in ids for link in doc["links"])
    json.dumps(doc)
    back = FlowGraph.from_json(graph.to_json(threshold=0))
    assert back.parallel_attn_mlp and [n.key for n in back.nodes] == [n.key for n in graph.nodes]
    assert len(back.edges) == len([e for e in graph.edges if e[2] >= 0])
    assert json.loads(graph.to_json())["parallel_attn_mlp"] is True  # a sequential graph's JSON is as before
    neurons = top_neurons(model.bridge, graph, layer=1, position=graph.output[1], n_neurons=4)
    assert len(neurons) == 4 and neurons[0].score >= neurons[-1].score
